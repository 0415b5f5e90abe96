"""The Prometheus alert rules of ``k8s/`` under the real ``promtool`` (Debian's ``prometheus`` package):
``check rules`` on the rendered PrometheusRule, and ``test rules`` with ``tests/promtool/alerts_test.yaml``,
where each alert fires on the series that should fire it and not on a healthy one."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_helpers import by_kind, rendered

from tiltstream.k8s.render import find_tool

UNIT_TESTS = Path(__file__).resolve().parent / "promtool" / "alerts_test.yaml"


def _groups() -> list[dict[str, Any]]:
    """The rendered PrometheusRule's rule groups (a copy: the rendering is cached)."""
    rule = by_kind(rendered("base"), "PrometheusRule")["tiltstream"]
    groups: list[dict[str, Any]] = copy.deepcopy(rule["spec"]["groups"])
    return groups


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": _groups()}, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return tmp_path


def test_promtool_accepts_the_rendered_alert_rules(rules_dir: Path) -> None:
    result = _promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in _groups())
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    groups = _groups()
    groups[0]["rules"][0]["expr"] = "sum by (topic) (kafka_consumergroup_lag > 0"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    result = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "TiltstreamConsumerLagGrowing" in result.stdout + result.stderr


def test_every_alert_fires_on_its_series_and_not_on_a_healthy_one(rules_dir: Path) -> None:
    result = _promtool("test", "rules", UNIT_TESTS.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_cover_every_alert_both_ways() -> None:
    alerts = {rule["alert"] for group in _groups() for rule in group["rules"] if "alert" in rule}
    cases = [
        case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts == fires == quiet


def test_promtool_test_fails_when_an_alert_does_not_fire_as_expected(rules_dir: Path) -> None:
    text = (rules_dir / UNIT_TESTS.name).read_text().replace("Lag 7 with", "Lag 8 with")
    (rules_dir / UNIT_TESTS.name).write_text(text)
    result = _promtool("test", "rules", UNIT_TESTS.name, cwd=rules_dir)
    assert result.returncode != 0
    assert "TiltstreamGroupWithoutMembers" in result.stdout + result.stderr
