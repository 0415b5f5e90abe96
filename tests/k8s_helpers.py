"""Helpers for the Kubernetes tests: the rendered overlays and minimal checks of the CRD objects.

``kubernetes-validate`` ships the core API's schemas only; the Strimzi, KEDA and prometheus-operator
objects are checked here for the fields their operators require (from the CRDs' ``required`` lists and
the operators' documented behaviour), which is what a typo or a missing block would break.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer

from tiltstream.cli import create_app
from tiltstream.k8s.render import render_kustomization
from tiltstream.settings import CliSettings

__all__ = [
    "COMMANDS_IN_PROGRESS",
    "CRD_KINDS",
    "K8S",
    "OVERLAYS",
    "by_kind",
    "check_crd_object",
    "cli_commands",
    "rendered",
]

K8S = Path(__file__).resolve().parent.parent / "k8s"
#: Every kustomization a cluster can be given: the base and each overlay.
OVERLAYS = ("base", "overlays/burst", "overlays/facility-20")

Manifest = dict[str, Any]

#: Commands other issues are building now; a manifest may name them before they exist. Drop an entry
#: when its command lands (then the real CLI vouches for it). Anything else must exist today.
COMMANDS_IN_PROGRESS = {
    ("process", "motioncorr"),
    ("process", "ctf"),
    ("process", "reconstruct"),
    ("process", "denoise"),
    ("aggregate",),
    ("sink", "ispyb", "run"),
    ("watch",),
    ("web",),
}


def cli_commands() -> set[tuple[str, ...]]:
    """Every runnable command path of the real Typer application."""
    paths: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None) or {}
        if not subcommands or getattr(command, "invoke_without_command", False):
            paths.add(path)
        for name, sub in subcommands.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(create_app(CliSettings())), ())
    return paths


@functools.cache
def _rendered(name: str) -> tuple[Manifest, ...]:
    return tuple(render_kustomization(K8S / name))


def rendered(name: str) -> list[Manifest]:
    """The objects ``k8s/<name>`` renders to (cached; treat as read-only)."""
    return list(_rendered(name))


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The objects of one kind, by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def _need(obj: Manifest, path: str, problems: list[str], kind: type | tuple[type, ...] = object) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            problems.append(f"missing {path}")
            return None
        value = value[part]
    if not isinstance(value, kind):
        problems.append(f"{path} should be {kind}, is {type(value).__name__}")
    return value


def _kafka(obj: Manifest, problems: list[str]) -> None:
    listeners = _need(obj, "spec.kafka.listeners", problems, list) or []
    for listener in listeners:
        for key in ("name", "port", "type", "tls"):
            if key not in listener:
                problems.append(f"listener without {key}")
    annotations = obj["metadata"].get("annotations", {})
    if (
        annotations.get("strimzi.io/kraft") != "enabled"
        or annotations.get("strimzi.io/node-pools") != "enabled"
    ):
        problems.append("Kafka must run in KRaft mode with node pools")
    if "zookeeper" in obj["spec"] or "replicas" in obj["spec"].get("kafka", {}):
        problems.append("with node pools, replicas and storage belong to the KafkaNodePools")


def _node_pool(obj: Manifest, problems: list[str]) -> None:
    _need(obj, "spec.replicas", problems, int)
    roles = _need(obj, "spec.roles", problems, list) or []
    if not roles or not set(roles) <= {"broker", "controller"}:
        problems.append(f"roles {roles} not broker/controller")
    _need(obj, "spec.storage.type", problems, str)
    if "strimzi.io/cluster" not in obj["metadata"].get("labels", {}):
        problems.append("missing the strimzi.io/cluster label")


def _topic(obj: Manifest, problems: list[str]) -> None:
    _need(obj, "spec.partitions", problems, int)
    _need(obj, "spec.replicas", problems, int)
    config = _need(obj, "spec.config", problems, dict) or {}
    if any(not isinstance(v, str | int | bool) for v in config.values()):
        problems.append("topic config values must be scalars")
    if "strimzi.io/cluster" not in obj["metadata"].get("labels", {}):
        problems.append("missing the strimzi.io/cluster label")


def _user(obj: Manifest, problems: list[str]) -> None:
    if _need(obj, "spec.authentication.type", problems, str) not in ("scram-sha-512", "tls", "tls-external"):
        problems.append("unknown KafkaUser authentication type")
    for acl in obj["spec"].get("authorization", {}).get("acls", []):
        if "resource" not in acl or "type" not in acl["resource"] or not acl.get("operations"):
            problems.append(f"incomplete ACL {acl}")
    if "strimzi.io/cluster" not in obj["metadata"].get("labels", {}):
        problems.append("missing the strimzi.io/cluster label")


def _scaled_object(obj: Manifest, problems: list[str]) -> None:
    _need(obj, "spec.scaleTargetRef.name", problems, str)
    triggers = _need(obj, "spec.triggers", problems, list) or []
    if not triggers:
        problems.append("a ScaledObject needs triggers")
    for trigger in triggers:
        if "type" not in trigger or not isinstance(trigger.get("metadata"), dict):
            problems.append("trigger without type or metadata")
            continue
        if any(not isinstance(v, str) for v in trigger["metadata"].values()):
            problems.append(f"trigger metadata values must be strings: {trigger['metadata']}")
        if trigger["type"] == "kafka":
            for key in ("bootstrapServers", "consumerGroup", "lagThreshold"):
                if key not in trigger["metadata"]:
                    problems.append(f"kafka trigger without {key}")
        if trigger["type"] == "prometheus":
            for key in ("serverAddress", "query", "threshold"):
                if key not in trigger["metadata"]:
                    problems.append(f"prometheus trigger without {key}")
    modifiers = obj["spec"].get("advanced", {}).get("scalingModifiers")
    if modifiers is not None:
        names = {t.get("name") for t in triggers}
        if None in names or "formula" not in modifiers or "target" not in modifiers:
            problems.append("scalingModifiers need a formula, a target and named triggers")
    minimum, maximum = obj["spec"].get("minReplicaCount", 0), obj["spec"].get("maxReplicaCount", 100)
    if not 0 <= minimum <= maximum:
        problems.append(f"replica bounds {minimum}..{maximum}")


def _trigger_authentication(obj: Manifest, problems: list[str]) -> None:
    for ref in _need(obj, "spec.secretTargetRef", problems, list) or []:
        if not {"parameter", "name", "key"} <= set(ref):
            problems.append(f"incomplete secretTargetRef {ref}")


def _pod_monitor(obj: Manifest, problems: list[str]) -> None:
    _need(obj, "spec.selector", problems, dict)
    endpoints = _need(obj, "spec.podMetricsEndpoints", problems, list) or []
    if not endpoints or any("port" not in e for e in endpoints):
        problems.append("podMetricsEndpoints need a port name")


def _prometheus_rule(obj: Manifest, problems: list[str]) -> None:
    for group in _need(obj, "spec.groups", problems, list) or []:
        if "name" not in group or not group.get("rules"):
            problems.append("rule group without name or rules")
        for rule in group.get("rules", []):
            if "expr" not in rule or ("alert" in rule) == ("record" in rule):
                problems.append(f"rule needs expr and exactly one of alert/record: {rule}")
            expr = str(rule.get("expr", ""))
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                problems.append(f"unbalanced brackets in {rule.get('alert')}")


CRD_KINDS = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): _kafka,
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): _node_pool,
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): _topic,
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): _user,
    ("keda.sh/v1alpha1", "ScaledObject"): _scaled_object,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): _trigger_authentication,
    ("monitoring.coreos.com/v1", "PodMonitor"): _pod_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): _prometheus_rule,
}


def check_crd_object(obj: Manifest) -> list[str]:
    """What is wrong with a Strimzi, KEDA or prometheus-operator object (empty when nothing)."""
    check = CRD_KINDS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if check is None:
        return [f"no check for {obj.get('apiVersion')} {obj.get('kind')}"]
    problems: list[str] = []
    if not obj.get("metadata", {}).get("name"):
        problems.append("missing metadata.name")
    if "spec" not in obj:
        return [*problems, "missing spec"]
    check(obj, problems)
    return problems
