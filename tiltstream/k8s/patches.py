"""Kustomize patches: strategic merge (the subset ``k8s/`` uses) and JSON 6902, and patch targets.

Strategic merge follows Kubernetes' rules where they matter here: maps merge recursively, ``null``
deletes a key, ``$patch: delete`` removes a list item or a whole object, and lists of the built-in API
kinds merge by their merge key (containers and volumes by ``name``, ports by ``containerPort``, volume
mounts by ``mountPath``); every other list, and every list of a custom resource (Kustomize knows no
schema for those), is replaced.
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["apply_json6902", "matches_target", "strategic_merge"]

Manifest = dict[str, Any]

#: Merge keys of the built-in kinds' lists, by field name.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "volumeClaimTemplates": "name",
}

#: API groups whose kinds Kustomize knows the schema of (so merge keys apply).
BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}
)


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _merge(base: Any, patch: Any, *, builtin: bool, field: str = "") -> Any:
    if isinstance(patch, dict) and isinstance(base, dict):
        merged = dict(base)
        for key, value in patch.items():
            if key == "$patch":
                continue
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value, builtin=builtin, field=key)
            else:
                merged[key] = _merge(None, value, builtin=builtin, field=key)
        return merged
    if isinstance(patch, list) and isinstance(base, list) and builtin and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged_list = list(base)
        for item in patch:
            position = next((i for i, old in enumerate(merged_list) if old.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if position is not None:
                    del merged_list[position]
            elif position is None:
                merged_list.append(_merge(None, item, builtin=builtin))
            else:
                merged_list[position] = _merge(merged_list[position], item, builtin=builtin)
        return merged_list
    if isinstance(patch, dict):
        return {k: _merge(None, v, builtin=builtin, field=k) for k, v in patch.items() if k != "$patch"}
    return copy.deepcopy(patch)


def strategic_merge(resource: Manifest, patch: Manifest) -> Manifest | None:
    """``resource`` with ``patch`` merged in; ``None`` when the patch deletes the object."""
    if patch.get("$patch") == "delete":
        return None
    body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
    builtin = _group(str(resource.get("apiVersion", ""))) in BUILTIN_GROUPS
    merged = _merge(resource, body, builtin=builtin)
    assert isinstance(merged, dict)
    return merged


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk(document: Any, parts: list[str]) -> Any:
    for part in parts:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def _set(document: Any, parts: list[str], value: Any, *, insert: bool) -> None:
    parent, last = _walk(document, parts[:-1]), parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif insert:
            parent.insert(int(last), value)
        else:
            parent[int(last)] = value
    elif not insert and last not in parent:
        raise KeyError(f"replace of missing key {last!r}")
    else:
        parent[last] = value


def apply_json6902(resource: Manifest, operations: list[dict[str, Any]]) -> Manifest:
    """``resource`` with the RFC 6902 operations applied (add, remove, replace, move, copy, test)."""
    document = copy.deepcopy(resource)
    for operation in operations:
        op, parts = operation["op"], _pointer(operation["path"])
        if op in ("add", "replace"):
            _set(document, parts, copy.deepcopy(operation["value"]), insert=op == "add")
        elif op == "remove":
            parent = _walk(document, parts[:-1])
            del parent[int(parts[-1]) if isinstance(parent, list) else parts[-1]]
        elif op in ("move", "copy"):
            source = _pointer(operation["from"])
            value = copy.deepcopy(_walk(document, source))
            if op == "move":
                parent = _walk(document, source[:-1])
                del parent[int(source[-1]) if isinstance(parent, list) else source[-1]]
            _set(document, parts, value, insert=True)
        elif op == "test":
            if _walk(document, parts) != operation["value"]:
                raise ValueError(f"JSON patch test failed at {operation['path']}")
        else:
            raise ValueError(f"unknown JSON patch operation {op!r}")
    return document


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, _, value = term.partition("!=")
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, _, value = term.partition("=")
            if labels.get(key.strip()) != value.strip().lstrip("="):
                return False
        elif labels.get(term) is None:
            return False
    return True


def matches_target(resource: Manifest, target: dict[str, str]) -> bool:
    """Whether ``resource`` is selected by a patch ``target`` (group, version, kind, name, namespace,
    labelSelector, annotationSelector; ``name`` and ``namespace`` are anchored regular expressions)."""
    group, _, version = str(resource.get("apiVersion", "")).rpartition("/")
    metadata = resource.get("metadata", {})
    fields = {
        "group": group,
        "version": version,
        "kind": str(resource.get("kind", "")),
        "name": str(metadata.get("name", "")),
        "namespace": str(metadata.get("namespace", "")),
    }
    for key, wanted in target.items():
        if key in ("group", "version", "kind") and fields[key] != wanted:
            return False
        if key in ("name", "namespace") and not re.fullmatch(wanted, fields[key]):
            return False
        if key == "labelSelector" and not _selector_matches(wanted, metadata.get("labels") or {}):
            return False
        if key == "annotationSelector" and not _selector_matches(wanted, metadata.get("annotations") or {}):
            return False
        if key not in (
            "group",
            "version",
            "kind",
            "name",
            "namespace",
            "labelSelector",
            "annotationSelector",
        ):
            raise ValueError(f"unsupported patch target field {key!r}")
    return True
