"""The processors' manifest files generated from the stage registry, and writing them into ``k8s/``.

Two folders of ``k8s/`` are this module's output and nothing else: ``base/processors/`` (per stage its
Deployment, PodDisruptionBudget and ScaledObject, plus the folder's ``kustomization.yaml``) and
``overlays/burst/stages/`` (the burst capacity). ``tiltstream k8s processors`` writes them; a test checks
that the committed files equal :func:`processor_files`, so a stage added to the registry without
regenerating fails the suite.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from tiltstream.k8s.burst import burst_documents
from tiltstream.k8s.processors import Commented, stage_documents
from tiltstream.stages import REGISTRY, StageRegistry
from tiltstream.streams.catalogue import Catalogue

__all__ = ["BURST_DIR", "GENERATED_DIRS", "PROCESSORS_DIR", "processor_files", "write_processor_files"]

#: Where the generated files go, relative to ``k8s/``.
PROCESSORS_DIR = "base/processors"
BURST_DIR = "overlays/burst/stages"
GENERATED_DIRS = (PROCESSORS_DIR, BURST_DIR)


def _header(catalogue: Catalogue) -> str:
    argv = [
        "tiltstream", "k8s", "processors", "--prefix", catalogue.settings.prefix,
        "--partitions", str(catalogue.settings.partitions), "--output-dir", "k8s",
    ]  # fmt: skip
    return (
        "# Generated from the stage registry (tiltstream/stages/); do not edit by hand.\n"
        f"# Regenerate with:  {shlex.join(argv)}\n"
    )


def _yaml(header: str, documents: list[Commented]) -> str:
    parts = []
    for comment, manifest in documents:
        lines = "".join(f"# {line}\n" for line in comment)
        parts.append(lines + yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, width=110))
    return header + "---\n" + "---\n".join(parts)


def _kustomization(header: str, files: list[str]) -> str:
    spec = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files}
    return header + yaml.safe_dump(spec, sort_keys=False)


def processor_files(catalogue: Catalogue, registry: StageRegistry = REGISTRY) -> dict[str, str]:
    """Every generated file's text by its path relative to ``k8s/``.

    Parameters
    ----------
    catalogue
        The layout the cluster's topics have (the prefix names the input topics; the partition
        count bounds the replicas).
    registry
        The stages to deploy.
    """
    header = _header(catalogue)
    files: dict[str, str] = {}
    local, burst = [], []
    for stage in registry.stages():
        local.append(f"{stage.name}.yaml")
        files[f"{PROCESSORS_DIR}/{stage.name}.yaml"] = _yaml(header, stage_documents(stage, catalogue))
        documents = burst_documents(stage, catalogue)
        if documents:
            burst.append(f"{stage.name}-burst.yaml")
            files[f"{BURST_DIR}/{stage.name}-burst.yaml"] = _yaml(header, documents)
    files[f"{PROCESSORS_DIR}/kustomization.yaml"] = _kustomization(header, local)
    files[f"{BURST_DIR}/kustomization.yaml"] = _kustomization(header, burst)
    return files


def write_processor_files(
    k8s_root: Path, catalogue: Catalogue, registry: StageRegistry = REGISTRY
) -> list[Path]:
    """Write :func:`processor_files` under ``k8s_root``, removing stale YAML from the generated folders."""
    files = processor_files(catalogue, registry)
    for folder in GENERATED_DIRS:
        (k8s_root / folder).mkdir(parents=True, exist_ok=True)
        for old in (k8s_root / folder).glob("*.yaml"):
            if f"{folder}/{old.name}" not in files:
                old.unlink()
    written = []
    for relative, text in files.items():
        path = k8s_root / relative
        path.write_text(text)
        written.append(path)
    return written
