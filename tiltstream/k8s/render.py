"""Rendering ``k8s/`` with the real ``kustomize`` (the Go module ``sigs.k8s.io/kustomize/kustomize/v5``).

``scripts/install.sh`` builds it with ``go install`` into ``<cache dir>/go/bin`` (``~/.cache/tiltstream``,
the cache Kafka's jars use too); :func:`find_tool` looks there after ``PATH``, so a ``kustomize`` or
``promtool`` the operator installed some other way is used first. The tests, the scaling simulation and
``tiltstream k8s render`` all read the manifests through :func:`render_kustomization`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tiltstream.settings import default_cache_dir

__all__ = [
    "KustomizeError",
    "ToolNotFoundError",
    "find_tool",
    "object_id",
    "render_kustomization",
    "tool_dir",
]

Manifest = dict[str, Any]


class ToolNotFoundError(FileNotFoundError):
    """An external program (``kustomize``, ``promtool``) is neither on ``PATH`` nor in the tool cache."""


class KustomizeError(ValueError):
    """``kustomize build`` refused a kustomization (its own message is kept)."""


def tool_dir() -> Path:
    """Where ``scripts/install.sh`` puts the Go-built tools: ``<cache dir>/go/bin``."""
    return default_cache_dir() / "go" / "bin"


def find_tool(name: str) -> str:
    """The path of program ``name``: on ``PATH``, else in :func:`tool_dir`.

    Raises
    ------
    ToolNotFoundError
        When it is in neither (naming the command that installs it).
    """
    found = shutil.which(name)
    if found:
        return found
    cached = tool_dir() / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    raise ToolNotFoundError(
        f"{name} was found neither on PATH nor in {tool_dir()}; install it with: bash scripts/install.sh"
    )


def object_id(manifest: Manifest) -> tuple[str, str, str, str]:
    """(apiVersion group, kind, namespace, name): what Kustomize requires to be unique."""
    metadata = manifest.get("metadata") or {}
    group = str(manifest.get("apiVersion", "")).rpartition("/")[0]
    return group, str(manifest.get("kind")), str(metadata.get("namespace", "")), str(metadata.get("name"))


def render_kustomization(directory: Path, *, timeout_seconds: float = 120.0) -> list[Manifest]:
    """The objects ``kustomize build directory`` prints, in its order.

    Parameters
    ----------
    directory
        A folder holding a ``kustomization.yaml``.
    timeout_seconds
        How long ``kustomize`` may take.

    Raises
    ------
    KustomizeError
        When ``kustomize`` refuses the tree (its error message is the exception's).
    ToolNotFoundError
        When ``kustomize`` is not installed.
    """
    import yaml  # PyYAML: the k8s extra

    result = subprocess.run(
        [find_tool("kustomize"), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    if result.returncode != 0:
        raise KustomizeError(f"kustomize build {directory}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
