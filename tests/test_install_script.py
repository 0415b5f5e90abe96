"""``scripts/install.sh``, the one installer of ``make demo``, ``make test`` and CI: its dry run names every
program the code runs (found by reading the code, not from a second list), it changes nothing, a user
who cannot install Debian packages gets the one command to run, and the kustomize it builds is where
the code looks for it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tiltstream.k8s.render import tool_dir
from tiltstream.settings import LocalBrokerSettings

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install.sh"
#: How the code looks a program up: the local databases, the k8s tools, the browser tests, commands run.
LOOKUPS = re.compile(
    r"""(?:find_binary|find_tool|shutil\.which)\(\s*"([\w.-]+)"|"""
    r"""subprocess\.(?:run|Popen|check_output|check_call)\(\s*\[\s*"([\w.-]+)\""""
)


def programs_the_code_runs() -> set[str]:
    """Every program named in a lookup or a command line in the package, the tests and the benchmarks,
    the Kafka broker's (from its settings) and make (the two commands)."""
    names: set[str] = {"make"}
    for folder in ("tiltstream", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in LOOKUPS.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    names = {n for n in names if not n.startswith("no-such-")}  # test_localdb's absent program
    broker = LocalBrokerSettings()
    return names | {broker.java, broker.mvn}


def _run(*args: str, env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["/bin/bash", str(SCRIPT), *args]
    if user is not None:
        command = ["/usr/sbin/runuser", "-u", user, "--", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def _named(output: str) -> dict[str, str]:
    """Program → the dry run's line for it (``present NAME PATH`` or ``install NAME HOW``)."""
    lines = [line.split(None, 2) for line in output.splitlines()]
    return {parts[1]: line for parts, line in zip(lines, output.splitlines(), strict=True) if len(parts) > 1}


def test_the_code_derived_list_holds_the_tools_the_tests_use() -> None:
    names = programs_the_code_runs()
    assert {"java", "mvn", "mariadbd", "initdb", "chromium", "promtool", "kustomize", "make"} <= names


def test_the_dry_run_names_every_program_the_code_runs(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = _run("--dry-run", "--venv", str(tmp_path / "venv"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    named = _named(result.stdout)
    assert sorted(programs_the_code_runs() - set(named)) == []
    for step in ("python", "kafka"):
        assert step in named, result.stdout
    assert not (tmp_path / "venv").exists()
    assert not (tmp_path / "cache").exists()


def test_on_a_bare_path_the_dry_run_lists_the_debian_packages_and_builds_kustomize_where_the_code_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "c")}
    result = _run("--dry-run", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    named = _named(result.stdout)
    assert named["java"].endswith("apt-get install openjdk-17-jre-headless")
    assert named["chromium"].endswith("apt-get install chromium")
    assert named["promtool"].endswith("apt-get install prometheus")
    assert named["mvn"].endswith("apt-get install maven")
    assert "go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1" in named["kustomize"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert named["kustomize"].endswith(f"into {tool_dir()}")
    assert not (tmp_path / "c").exists()


def test_a_user_without_root_or_sudo_gets_the_one_command_and_nothing_changes() -> None:
    # A bare PATH (no sudo, no Java, no chromium ...) as an unprivileged user: nobody when run as root.
    home = Path(tempfile.mkdtemp(prefix="install-home-"))  # outside pytest's root-only tmp folders
    try:
        home.chmod(0o777)
        env = {"PATH": str(home / "empty"), "HOME": str(home)}
        result = _run("--venv", str(home / "venv"), env=env, user="nobody" if os.geteuid() == 0 else None)
        created = list(home.iterdir())
    finally:
        shutil.rmtree(home)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1].strip()
    assert last.startswith("sudo apt-get update && sudo apt-get install -y --no-install-recommends ")
    packages = last.split("--no-install-recommends ", 1)[1].split()
    assert {"openjdk-17-jre-headless", "maven", "chromium", "prometheus"} <= set(packages)
    assert created == []  # no venv, no cache, no kustomize build


def test_make_and_ci_install_through_the_script_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    recipe = makefile.split("\ninstall:", 1)[1].split("\n\n", 1)[0]
    assert "bash scripts/install.sh" in recipe
    assert "bash scripts/install.sh" in ci
    for text in (makefile, ci):
        assert "apt-get" not in text
        assert "pip install" not in text
    for target in ("demo", "lint", "typecheck", "unit", "compat"):
        assert re.search(rf"^{target}: install\b", makefile, re.MULTILINE), target
    assert re.search(r"^test: lint typecheck unit compat$", makefile, re.MULTILINE)
