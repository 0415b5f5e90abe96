"""The distribution: one top-level package, schemas inside, torch only in the gpu extra, development-only
code (the throw-away database servers) left out."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tiltstream.localdb import LocalMariaDB

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("tiltstream-*.whl")
    return zipfile.ZipFile(path)


def test_folders_of_design_exist_as_real_folders_of_the_package() -> None:
    for name in ("schemas", "streams", "processors", "connectors"):
        folder = ROOT / "tiltstream" / name
        assert folder.is_dir(), name
        assert not folder.is_symlink(), name
        assert not (ROOT / name).exists(), f"{name}/ at the top would give its modules a second path"
    for name in ("k8s", "tests", "pyproject.toml", "README.md"):
        assert (ROOT / name).exists(), name


def test_no_symbolic_links_are_committed() -> None:
    listing = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    links = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000 ")]
    assert links == []


def test_linters_and_type_checker_exclude_no_source() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    excluded = config["tool"]["ruff"].get("extend-exclude", []) + config["tool"]["ruff"].get("exclude", [])
    assert set(excluded) <= {".venv", "build"}, excluded
    mypy = config["tool"]["mypy"]
    assert "tiltstream" in mypy["files"]
    assert all(pattern.startswith(("^build", "^\\.venv")) for pattern in mypy.get("exclude", [])), mypy


def test_wheel_installs_only_the_tiltstream_package(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"tiltstream"}
    names = set(wheel.namelist())
    for module in (
        "streams/serde.py",
        "streams/catalogue.py",
        "processors/__init__.py",
        "connectors/__init__.py",
    ):
        assert f"tiltstream/{module}" in names, module
    assert "tiltstream/schemas/tiltstream.events.MovieAcquired.avsc" in names
    assert "tiltstream/schemas/history/MovieAcquired/v1.avsc" in names


def test_light_install_does_not_need_torch(wheel: zipfile.ZipFile) -> None:
    (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(wheel.read(meta_name).decode())
    requires = metadata.get_all("Requires-Dist") or []
    core = [r for r in requires if "extra ==" not in r]
    assert core, "core dependencies missing"
    assert not any(r.lower().startswith("torch") for r in core)
    assert any(r.lower().startswith("torch") and 'extra == "gpu"' in r for r in requires)
    assert any(r.lower().startswith("faust-streaming") and 'extra == "aggregator"' in r for r in requires)


def test_light_services_import_without_torch() -> None:
    code = (
        "import sys, tiltstream.cli, tiltstream.streams.serde, tiltstream.streams.consumer;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_wheel_leaves_out_the_throwaway_databases_and_keeps_the_demo_broker(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert not [n for n in names if n.startswith("tiltstream/localdb/")]
    # The repository still has them, for the tests and benchmarks.
    assert LocalMariaDB.__module__ == "tiltstream.localdb.mariadb"
    # `tiltstream demo` runs a local Kafka broker: that ships, with what the CLI's demo imports.
    for module in ("streams/broker/local.py", "streams/broker/maven.py", "demo_session.py", "cli/demo.py"):
        assert f"tiltstream/{module}" in names, module


def test_no_shipped_module_imports_the_development_only_code(wheel: zipfile.ZipFile) -> None:
    importers = [
        name
        for name in wheel.namelist()
        if name.endswith(".py") and "tiltstream.localdb" in wheel.read(name).decode()
    ]
    assert importers == []
