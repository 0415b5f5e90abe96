"""The Grafana dashboard (``k8s/base/monitoring/grafana-dashboard.json``): every panel's queries name
metrics the services really export, grouped by labels those metrics have, and parse as PromQL (the real
``promtool``); the rendered base ships it as the ConfigMap Grafana's dashboard sidecar loads.

The exported names come from the services' own metric classes, registered on a fresh registry as each
service registers them, so a metric renamed in the code fails here."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_helpers import K8S, by_kind, rendered
from prometheus_client import CollectorRegistry

from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink
from tiltstream.connectors.source.metrics import WatcherMetrics
from tiltstream.k8s.render import find_tool
from tiltstream.processors.runtime.metrics import ProcessorMetrics
from tiltstream.streams.aggregator.metrics import AggregatorMetrics
from tiltstream.streams.runtime.metrics import ConsumerMetrics

DASHBOARD = K8S / "base" / "monitoring" / "grafana-dashboard.json"
#: Metric names of tiltstream's own services (the Kafka Exporter's and KEDA's are the alerts' business).
OWN_METRIC = re.compile(r"\b(?:tiltstream|ispyb_sink)_[a-z0-9_]+\b")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _exported() -> dict[str, set[str]]:
    """Every sample name the services export, with its label names.

    A labelled metric has no samples until its first child, so the names and label names are read
    from the collectors themselves (prometheus_client keeps them in ``_collector_to_names`` and
    ``_labelnames``; its own registries read them the same way)."""
    registry = CollectorRegistry()
    ProcessorMetrics(registry, "motioncorr")
    ConsumerMetrics(registry, "tiltstream_processor", {"stage": "motioncorr"})
    WatcherMetrics(registry)
    AggregatorMetrics(registry)
    IspybSink(IspybSinkSettings(database_url="sqlite://"), registry=registry)
    names: dict[str, set[str]] = {}
    for collector, sample_names in registry._collector_to_names.items():
        labels = set(getattr(collector, "_labelnames", ()))
        for name in sample_names:
            names.setdefault(name, set()).update(labels)
    return names


def _queries() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _problems(queries: list[tuple[str, str]], exported: dict[str, set[str]]) -> list[str]:
    problems = []
    for title, expr in queries:
        metrics = OWN_METRIC.findall(expr)
        if not metrics:
            problems.append(f"{title}: names no tiltstream metric")
        problems += [f"{title}: {m} is exported by no service" for m in metrics if m not in exported]
        labels = set().union(*(exported.get(m, set()) for m in metrics)) | {"le"}
        for group in GROUPING.findall(expr):
            wanted = {part.strip() for part in group.split(",")} - {""}
            problems += [f"{title}: no label {label} on {metrics}" for label in sorted(wanted - labels)]
    return problems


def test_every_panel_queries_metrics_the_services_export() -> None:
    queries = _queries()
    assert len({title for title, _ in queries}) >= 15
    assert _problems(queries, _exported()) == []


def test_the_check_catches_a_renamed_metric_a_missing_label_and_a_foreign_query() -> None:
    queries = [
        ("renamed", "sum(rate(tiltstream_processor_processed_count[5m]))"),
        ("label", "sum by (series) (rate(tiltstream_processor_processed_total[5m]))"),
        ("foreign", "sum(kafka_consumergroup_lag)"),
    ]
    assert _problems(queries, _exported()) == [
        "renamed: tiltstream_processor_processed_count is exported by no service",
        "label: no label series on ['tiltstream_processor_processed_total']",
        "foreign: names no tiltstream metric",
    ]


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query:{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, (_, expr) in enumerate(_queries())
    ]
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}))
    result = subprocess.run(
        [find_tool("promtool"), "check", "rules", "queries.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", ["base", "overlays/burst", "overlays/facility-20"])
def test_the_dashboard_ships_as_a_configmap_for_grafanas_sidecar(overlay: str) -> None:
    config_map = by_kind(rendered(overlay), "ConfigMap")["tiltstream-grafana-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["grafana-dashboard.json"]) == json.loads(DASHBOARD.read_text())
