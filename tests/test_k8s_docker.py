"""The container images (docker/): nothing here builds them (no Docker engine), so check what can be
checked: every COPY source exists and is not ignored, every tiltstream command they run is real,
the extras they install exist and keep torch out of the light image, and the manifests use them."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from k8s_helpers import COMMANDS_IN_PROGRESS, OVERLAYS, by_kind, cli_commands, rendered

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
IMAGES = {"light": DOCKER / "Dockerfile.light", "gpu": DOCKER / "Dockerfile.gpu"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def ignored(path: str, dockerfile: Path) -> bool:
    patterns = [p.strip() for p in Path(f"{dockerfile}.dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    parts = Path(path).parts
    return any(fnmatch.fnmatch("/".join(parts[: i + 1]), p) for p in patterns for i in range(len(parts)))


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


@pytest.mark.parametrize("image", IMAGES)
def test_every_copied_path_exists_in_the_context_and_is_sent(image: str) -> None:
    dockerfile = IMAGES[image]
    copies = [args for word, args in instructions(dockerfile) if word in ("COPY", "ADD")]
    assert copies
    for args in copies:
        words = shlex.split(args)
        if any(w.startswith("--from=") for w in words):
            continue
        sources = [w for w in words if not w.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} is not in the repository"
            assert not ignored(source.rstrip("/"), dockerfile), f"{source} is excluded by the .dockerignore"
    # the whole package is one tree: copying tiltstream/ copies every module
    copied = {shlex.split(a)[0].rstrip("/") for a in copies if not a.startswith("--from")}
    assert "tiltstream" in copied


@pytest.mark.parametrize("image", IMAGES)
def test_commands_and_extras_are_real(image: str) -> None:
    dockerfile = IMAGES[image]
    steps = instructions(dockerfile)
    real = cli_commands() | COMMANDS_IN_PROGRESS
    extras = set(_pyproject()["project"]["optional-dependencies"])  # type: ignore[index]
    installed: set[str] = set()
    for word, args in steps:
        for found in re.findall(r"\[([a-z0-9_,-]+)\]'", args):
            installed |= set(found.split(","))
        for match in re.findall(r"\btiltstream((?: [a-z0-9-]+)*)", args if word == "RUN" else ""):
            path = tuple(w for w in match.split() if not w.startswith("-"))
            assert path in real or path == (), f"{dockerfile.name} runs `tiltstream{match}`"
    assert installed
    assert installed <= extras, installed - extras
    assert ("RUN", "tiltstream --help > /dev/null") in steps or any(
        "&& tiltstream --help" in a for _, a in steps
    )
    if image == "light":
        assert "gpu" not in installed  # no torch in the light services
    entrypoint = [args for word, args in steps if word == "ENTRYPOINT"]
    assert entrypoint == ['["tiltstream"]']
    users = [args for word, args in steps if word == "USER"]
    assert users
    assert users[-1].split(":")[0] == "10001"  # the manifests' runAsUser
    bases = [args for word, args in steps if word == "ARG" and "IMAGE=" in args]
    assert bases
    assert all(":" in b and not b.endswith(":latest") for b in bases)


def test_manifests_use_the_images_of_this_version() -> None:
    version = _pyproject()["project"]["version"]  # type: ignore[index]
    for overlay in OVERLAYS:
        manifests = rendered(overlay)
        for workload in [
            *by_kind(manifests, "Deployment").values(),
            *by_kind(manifests, "StatefulSet").values(),
        ]:
            pod = workload["spec"]["template"]["spec"]
            container = pod["containers"][0]
            gpu = container["command"][1] == "process"
            assert container["image"] == f"tiltstream/{'gpu' if gpu else 'light'}:{version}"
            assert pod["securityContext"]["runAsUser"] == 10001
