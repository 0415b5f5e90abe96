"""A small, honest Kustomize renderer for the subset of Kustomize that ``k8s/`` uses.

Neither Debian nor PyPI packages ``kustomize`` itself, so the tests, the scaling simulation and
``tiltstream k8s render`` read the manifests through this module instead of ``kubectl kustomize``.
It supports exactly these ``kustomization.yaml`` fields and refuses any other, so an overlay can never
silently mean something else here than under the real tool:

- ``resources``: YAML files (one or more documents) and directories holding a ``kustomization.yaml``;
- ``namespace``: set on every namespaced object;
- ``labels``: ``pairs`` added to ``metadata.labels``, and with ``includeTemplates`` to the pod
  templates of workloads and a StatefulSet's volume claim templates (``includeSelectors`` is
  refused: selectors are immutable);
- ``patches``: from ``path`` or inline ``patch``, strategic merge or JSON 6902, with an optional
  ``target`` (see :mod:`tiltstream.k8s.patches`);
- ``images``: ``newName``, ``newTag`` and ``digest`` for matching container images.

Output keeps resource order (base before overlay additions), like ``sortOptions: fifo``. On the
manifests of ``k8s/`` its output was checked against ``kubectl kustomize`` (v5.5.0) object by object.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tiltstream.k8s.patches import apply_json6902, matches_target, strategic_merge

__all__ = ["KustomizeError", "object_id", "render_kustomization"]

Manifest = dict[str, Any]

SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace", "labels", "patches", "images"})

#: Kinds that have no namespace (the ones ``k8s/`` could plausibly contain).
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
     "StorageClass", "PersistentVolume", "ClusterTriggerAuthentication"}
)  # fmt: skip

#: Kinds whose ``spec.template`` is a pod template (``labels.includeTemplates``).
WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


class KustomizeError(ValueError):
    """A kustomization this renderer cannot render (unsupported field, missing file, conflict)."""


def object_id(manifest: Manifest) -> tuple[str, str, str, str]:
    """(apiVersion group, kind, namespace, name): what Kustomize requires to be unique."""
    metadata = manifest.get("metadata") or {}
    group = str(manifest.get("apiVersion", "")).rpartition("/")[0]
    return group, str(manifest.get("kind")), str(metadata.get("namespace", "")), str(metadata.get("name"))


def _load_documents(path: Path) -> list[Any]:
    try:
        with path.open() as stream:
            return [doc for doc in yaml.safe_load_all(stream) if doc is not None]
    except FileNotFoundError as error:
        raise KustomizeError(f"{path} does not exist") from error


def _kustomization_file(directory: Path) -> Path:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory} holds no kustomization.yaml")


def _images(manifest: Manifest, images: list[dict[str, str]]) -> None:
    spec = (manifest.get("spec") or {}).get("template", {}).get("spec") or {}
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        image = str(container.get("image", ""))
        name = image.split("@")[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        for rule in images:
            if rule["name"] != name:
                continue
            new = rule.get("newName", name)
            if "digest" in rule:
                container["image"] = f"{new}@{rule['digest']}"
            elif "newTag" in rule:
                container["image"] = f"{new}:{rule['newTag']}"
            else:
                container["image"] = new + image[len(name) :]


def _labels(manifest: Manifest, entry: dict[str, Any]) -> None:
    if entry.get("includeSelectors"):
        raise KustomizeError("labels.includeSelectors is not supported (selectors are immutable)")
    pairs = {str(k): str(v) for k, v in entry["pairs"].items()}
    manifest.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if entry.get("includeTemplates") and manifest.get("kind") in WORKLOADS:
        template = manifest.setdefault("spec", {}).setdefault("template", {})
        template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        for claim in manifest["spec"].get("volumeClaimTemplates", []):
            claim.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _patch(resources: list[Manifest], entry: dict[str, Any], directory: Path) -> list[Manifest]:
    if "path" in entry:
        documents = _load_documents(directory / entry["path"])
    elif "patch" in entry:
        documents = [doc for doc in yaml.safe_load_all(entry["patch"]) if doc is not None]
    else:
        raise KustomizeError(f"patch in {directory} has neither path nor patch")
    target = entry.get("target")
    if len(documents) > 1:
        if target is not None or not all(isinstance(doc, dict) for doc in documents):
            raise KustomizeError(
                f"several documents in one patch only as strategic merges without target ({entry})"
            )
        for document in documents:
            resources = _patch(resources, {"patch": yaml.safe_dump(document)}, directory)
        return resources
    patch = documents[0]
    if isinstance(patch, list) and target is None:
        raise KustomizeError(f"a JSON 6902 patch needs a target ({entry})")
    if target is None:
        target = {"kind": patch["kind"], "name": patch["metadata"]["name"]}
    selected = [r for r in resources if matches_target(r, target)]
    if not selected:
        raise KustomizeError(f"patch target {target} matches no resource in {directory}")
    output: list[Manifest] = []
    for resource in resources:
        if not any(resource is s for s in selected):
            output.append(resource)
        elif isinstance(patch, list):
            output.append(apply_json6902(resource, patch))
        else:
            merged = strategic_merge(resource, patch)
            if merged is not None:
                output.append(merged)
    return output


def render_kustomization(directory: Path) -> list[Manifest]:
    """The objects the kustomization in ``directory`` produces (resources, then transformers in
    Kustomize's order: patches, namespace, labels, images)."""
    directory = Path(directory)
    spec = _load_documents(_kustomization_file(directory))[0]
    unsupported = set(spec) - SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unsupported)}")
    resources: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources += render_kustomization(path)
        else:
            resources += [copy.deepcopy(doc) for doc in _load_documents(path)]
    for entry in spec.get("patches", []):
        resources = _patch(resources, entry, directory)
    for manifest in resources:
        if "namespace" in spec and manifest.get("kind") not in CLUSTER_SCOPED:
            manifest.setdefault("metadata", {})["namespace"] = spec["namespace"]
        for entry in spec.get("labels", []):
            _labels(manifest, entry)
        _images(manifest, spec.get("images", []))
    seen: set[tuple[str, str, str, str]] = set()
    for manifest in resources:
        key = object_id(manifest)
        if key in seen:
            raise KustomizeError(f"{directory}: two objects with id {key}")
        seen.add(key)
    return resources
