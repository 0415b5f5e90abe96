"""The processors' Kubernetes objects from the stage registry: Deployment, PodDisruptionBudget and
KEDA ScaledObject per stage.

``k8s/base/processors/`` is this module's output (see :mod:`tiltstream.k8s.generated`); a test checks
that the committed files and the registry agree, as ``k8s/base/kafka/topics.yaml`` and the catalogue do.
"""

from __future__ import annotations

from typing import Any

from tiltstream.stages import Device, Stage
from tiltstream.streams.catalogue import Catalogue

__all__ = [
    "IMAGE",
    "KAFKA_BOOTSTRAP",
    "METRICS_PORT",
    "Commented",
    "Manifest",
    "container",
    "disruption_budget",
    "kafka_trigger",
    "local_deployment",
    "scaled_object",
    "stage_documents",
    "workload_name",
]

#: The image every processor runs (CUDA builds of torch; CPU stages use it without a GPU).
IMAGE = "tiltstream/gpu:0.1.0"
#: Strimzi's bootstrap service of the ``tiltstream`` cluster (TLS listener).
KAFKA_BOOTSTRAP = "tiltstream-kafka-bootstrap.tiltstream.svc:9093"
#: Every service's ``/metrics``, ``/healthz`` and ``/readyz`` port.
METRICS_PORT = 9400

Manifest = dict[str, Any]
#: A manifest and the comment lines (without ``#``) written above it.
Commented = tuple[list[str], Manifest]


def workload_name(stage: Stage) -> str:
    """The Deployment and ScaledObject name of a stage (``tiltstream-motioncorr``)."""
    return f"tiltstream-{stage.name}"


def _resources(stage: Stage) -> Manifest:
    sizing = stage.sizing
    requests: Manifest = {"cpu": sizing.cpu_request, "memory": sizing.memory_request}
    limits: Manifest = {"cpu": sizing.cpu_limit, "memory": sizing.memory_limit}
    if stage.device is Device.GPU:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = 1
    return {"requests": requests, "limits": limits}


def _probe(path: str, period: int, failures: int, timeout: int | None = None) -> Manifest:
    probe: Manifest = {"httpGet": {"path": path, "port": "metrics"}, "periodSeconds": period}
    if timeout is not None:
        probe["timeoutSeconds"] = timeout
    probe["failureThreshold"] = failures
    return probe


def container(stage: Stage) -> Manifest:
    """The stage's container: ``tiltstream process <stage>`` in its registry group, probes, mounts."""
    prefix = stage.env_prefix
    return {
        "name": stage.name,
        "image": IMAGE,
        "command": ["tiltstream", "process", stage.name],
        "envFrom": [{"configMapRef": {"name": "tiltstream-kafka"}}],
        "env": [
            {
                "name": "TILTSTREAM_KAFKA_SASL_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "tiltstream", "key": "password"}},
            },
            {"name": f"{prefix}GROUP_ID", "value": stage.group},
            {"name": f"{prefix}METRICS_PORT", "value": str(METRICS_PORT)},
        ],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "resources": _resources(stage),
        "startupProbe": _probe("/healthz", 5, max(1, stage.sizing.startup_seconds // 5)),
        "livenessProbe": _probe("/healthz", 15, 4, timeout=5),
        "readinessProbe": _probe("/readyz", 10, 3, timeout=5),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/data/raw", "subPath": "raw", "readOnly": True},
            {"name": "data", "mountPath": "/data/processed", "subPath": "processed"},
            {"name": "kafka-ca", "mountPath": "/etc/tiltstream/kafka-ca", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _pod_spec(stage: Stage) -> Manifest:
    spec: Manifest = {
        "terminationGracePeriodSeconds": stage.sizing.grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if stage.device is Device.GPU:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    spec["containers"] = [container(stage)]
    spec["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "tiltstream-data"}},
        {
            "name": "kafka-ca",
            "secret": {
                "secretName": "tiltstream-cluster-ca-cert",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": stage.sizing.tmp_size}},
    ]
    return spec


def local_deployment(stage: Stage, name: str | None = None, extra_labels: Manifest | None = None) -> Manifest:
    """The stage's Deployment (no ``replicas``: its ScaledObject owns the count)."""
    name = name or workload_name(stage)
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": stage.name,
        **(extra_labels or {}),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "revisionHistoryLimit": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": dict(labels)}, "spec": _pod_spec(stage)},
        },
    }


def disruption_budget(stage: Stage) -> Manifest:
    """Voluntary disruptions (node drains) take one pod of the stage at a time."""
    name = workload_name(stage)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
    }


def kafka_trigger(stage: Stage, catalogue: Catalogue, *, activation: bool) -> Manifest:
    """KEDA's Kafka trigger on the lag of the stage's group on its input topic."""
    metadata = {
        "bootstrapServers": KAFKA_BOOTSTRAP,
        "sasl": "scram_sha512",
        "tls": "enable",
        "consumerGroup": stage.group,
        "topic": catalogue.for_record(stage.input_record).name,
        "lagThreshold": str(stage.sizing.lag_threshold),
    }
    if activation:
        metadata["activationLagThreshold"] = "0"
    metadata.update(offsetResetPolicy="earliest", allowIdleConsumers="false")
    return {
        "type": "kafka",
        "name": "lag",
        "authenticationRef": {"name": "tiltstream-kafka"},
        "metadata": metadata,
    }


def scaled_object(stage: Stage, catalogue: Catalogue) -> Manifest:
    """Lag-driven scaling of the stage between its registry bounds."""
    sizing, name = stage.sizing, workload_name(stage)
    behaviour = {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        },
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": 15,
            "cooldownPeriod": sizing.cooldown_seconds,
            "minReplicaCount": sizing.min_replicas,
            "maxReplicaCount": sizing.max_replicas,
            "fallback": {"failureThreshold": 3, "replicas": sizing.fallback_replicas},
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behaviour}},
            "triggers": [kafka_trigger(stage, catalogue, activation=True)],
        },
    }


def _deployment_comment(stage: Stage, catalogue: Catalogue) -> list[str]:
    sizing = stage.sizing
    topic = catalogue.for_record(stage.input_record).name
    device = (
        "Runs on the CUDA image with one GPU; GPU nodes are usually tainted for GPU work only."
        if stage.device is Device.GPU
        else "CPU only; it runs on the processor image (torch on CPU)."
    )
    return [
        f"{stage.title}: `tiltstream process {stage.name}`, consumer group {stage.group}, input {topic}.",
        f"{sizing.reference} {device}",
        f"No `replicas`: the ScaledObject owns the count ({sizing.min_replicas}..{sizing.max_replicas}).",
        f"The grace period covers the job in hand after SIGTERM (a job takes about {sizing.job_seconds:g} s; "
        f"worst case {sizing.worst_job_seconds:g} s);",
        "the service stops polling, finishes or abandons the job, commits what is done and exits.",
        f"Start-up may load CUDA and models: up to {sizing.startup_seconds} s before liveness counts.",
    ]


def _scaling_comment(stage: Stage, catalogue: Catalogue) -> list[str]:
    sizing = stage.sizing
    activation = (
        "Scale to zero between sessions; any waiting event wakes the stage (activationLagThreshold 0)."
        if sizing.min_replicas == 0
        else "Always at least one replica (CPU is cheap); activation only matters at zero."
    )
    return [
        "Lag-driven scaling. desired replicas = ceil(lag / lagThreshold), so in steady state about",
        "lagThreshold events wait per replica: lagThreshold = target wait / job length = "
        f"{sizing.target_wait_seconds:g} s / {sizing.job_seconds:g} s -> {sizing.lag_threshold}.",
        f"maxReplicaCount {sizing.max_replicas} <= {catalogue.settings.partitions} partitions "
        "(more consumers than partitions would idle).",
        f"If Kafka cannot be read for 3 polls, hold {sizing.fallback_replicas} replicas rather than guess.",
        activation,
    ]


def stage_documents(stage: Stage, catalogue: Catalogue) -> list[Commented]:
    """The stage's Deployment, PodDisruptionBudget and ScaledObject with the comments above them."""
    return [
        (_deployment_comment(stage, catalogue), local_deployment(stage)),
        (["Voluntary disruptions (node drains) take one pod at a time; its job drains first."],
         disruption_budget(stage)),
        (_scaling_comment(stage, catalogue), scaled_object(stage, catalogue)),
    ]  # fmt: skip
