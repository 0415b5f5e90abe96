"""Burst capacity from the stage registry: each stage with ``burst_max_replicas`` gets a copy of its
Deployment on remote nodes and a ScaledObject that asks for pods only while the local stage is saturated.

Saturated: the lag exceeds what the local stage at its maximum holds (``max_replicas x lagThreshold``),
less the local replicas that could not start for 5 minutes (``stuck``: no free local GPU).
``k8s/overlays/burst/stages/`` is this module's output (see :mod:`tiltstream.k8s.generated`).
"""

from __future__ import annotations

from tiltstream.k8s.processors import Commented, Manifest, kafka_trigger, local_deployment, workload_name
from tiltstream.stages import Stage
from tiltstream.streams.catalogue import Catalogue

__all__ = ["BURST_NODE_POOL", "PROMETHEUS", "burst_deployment", "burst_documents", "burst_scaled_object"]

#: The node label of the remote (burst) capacity.
BURST_NODE_POOL = {"tiltstream.io/node-pool": "burst"}
#: Prometheus with kube-state-metrics (the ``stuck`` trigger).
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"


def burst_deployment(stage: Stage) -> Manifest:
    """The local Deployment's pod on burst nodes: same container (command, group, image, env)."""
    name = f"{workload_name(stage)}-burst"
    deployment = local_deployment(stage, name, {"tiltstream.io/burst": "true"})
    pod = deployment["spec"]["template"]["spec"]
    pod["tolerations"] = [
        *pod.get("tolerations", []),
        {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"},
    ]
    pod["nodeSelector"] = dict(BURST_NODE_POOL)
    return deployment


def _stuck_query(stage: Stage) -> str:
    selector = f'namespace="tiltstream",deployment="{workload_name(stage)}"'
    return (
        f"min_over_time((sum(kube_deployment_spec_replicas{{{selector}}}) - "
        f"sum(kube_deployment_status_replicas_available{{{selector}}}))[5m:30s]) or vector(0)"
    )


def burst_scaled_object(stage: Stage, catalogue: Catalogue) -> Manifest:
    """Scale the burst pods on the lag beyond the local stage's capacity."""
    sizing = stage.sizing
    threshold = str(sizing.lag_threshold)
    capacity = f"{threshold} * ({sizing.max_replicas} - stuck)"
    kafka = kafka_trigger(stage, catalogue, activation=False)
    stuck = {
        "type": "prometheus",
        "name": "stuck",
        "metadata": {
            "serverAddress": PROMETHEUS,
            "query": _stuck_query(stage),
            "threshold": "1",
            "ignoreNullValues": "true",
        },
    }
    name = f"{workload_name(stage)}-burst"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": 30,
            "cooldownPeriod": 1200,
            "minReplicaCount": 0,
            "maxReplicaCount": sizing.burst_max_replicas,
            "advanced": {
                "scalingModifiers": {
                    "formula": f"lag > {capacity} ? lag - {capacity} : 0",
                    "target": threshold,
                    "activationTarget": "0",
                    "metricType": "AverageValue",
                }
            },
            "triggers": [kafka, stuck],
        },
    }


def burst_documents(stage: Stage, catalogue: Catalogue) -> list[Commented]:
    """The burst Deployment and ScaledObject of ``stage``; none when it has no burst capacity."""
    sizing = stage.sizing
    if sizing.burst_max_replicas <= 0:
        return []
    comment = [
        f"Burst capacity for {stage.name}: the same service and consumer group ({stage.group}) on remote",
        "nodes, started only when the local stage is saturated (the eBIC IRIS pattern).",
        *([sizing.burst_note] if sizing.burst_note else []),
        f"Saturated: the lag exceeds what the local stage at its maximum ({sizing.max_replicas} replicas x "
        f"lagThreshold {sizing.lag_threshold}) holds,",
        "less the local replicas that could not start for 5 minutes (`stuck`: no free local GPU). Burst",
        f"replicas = ceil(excess / {sizing.lag_threshold}); local max {sizing.max_replicas} + burst max "
        f"{sizing.burst_max_replicas} <= {catalogue.settings.partitions} partitions.",
        "The container is the local one (a test checks); only where it runs differs.",
    ]
    return [(comment, burst_deployment(stage)), ([], burst_scaled_object(stage, catalogue))]
