"""The workloads in k8s/: real commands, GPUs and resources as in the eBIC table, probes, draining,
disruption budgets, and KEDA scaling bounded by the partitions."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_helpers import COMMANDS_IN_PROGRESS, OVERLAYS, by_kind, cli_commands, rendered

#: eBIC Table 1 (Horstmann et al. 2024): maximum instances, CPU request and limit, GPU per instance.
EBIC = {
    "motioncorr": (8, 0.5, 1.0, 1),
    "ctf": (4, 0.25, 1.0, 0),
    "reconstruct": (4, 0.5, 1.0, 1),
    "denoise": (2, 0.5, 1.0, 1),
}
#: Typical job lengths (s) the lagThresholds and grace periods are chosen from (see the simulation).
JOB_SECONDS = {"motioncorr": 4, "ctf": 5, "reconstruct": 90, "denoise": 60}
GROUPS = {name: f"tiltstream-{name}" for name in EBIC}
INPUT_TOPICS = {
    "motioncorr": "tiltstream.movie.acquired",
    "ctf": "tiltstream.movie.motion-corrected",
    "reconstruct": "tiltstream.tiltseries.reconstruction-requested",
    "denoise": "tiltstream.tomogram.reconstructed",
}


def _pod_specs(overlay: str) -> dict[str, dict[str, Any]]:
    manifests = rendered(overlay)
    workloads = {**by_kind(manifests, "Deployment"), **by_kind(manifests, "StatefulSet")}
    return {name: w["spec"]["template"]["spec"] for name, w in workloads.items()}


def _cpu(value: str | int | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_command_exists_in_the_cli(overlay: str) -> None:
    real = cli_commands()
    assert ("k8s", "topics") in real
    assert ("topics", "apply") in real  # the walk sees the real tree
    for name, pod in _pod_specs(overlay).items():
        for container in pod["containers"]:
            command = container["command"]
            assert command[0] == "tiltstream", name
            path = tuple(command[1:])
            assert path in real or path in COMMANDS_IN_PROGRESS, (
                f"{name}: `{' '.join(command)}` is no CLI command"
            )


def test_an_unknown_command_would_fail() -> None:
    assert ("process", "motioncorection") not in cli_commands() | COMMANDS_IN_PROGRESS


def test_processors_follow_the_ebic_table() -> None:
    manifests = rendered("base")
    pods, scaled = _pod_specs("base"), by_kind(manifests, "ScaledObject")
    for stage, (instances, cpu_request, cpu_limit, gpus) in EBIC.items():
        container = pods[f"tiltstream-{stage}"]["containers"][0]
        assert container["command"] == ["tiltstream", "process", stage]
        resources = container["resources"]
        assert _cpu(resources["requests"]["cpu"]) == cpu_request
        assert _cpu(resources["limits"]["cpu"]) == cpu_limit
        assert (
            resources["requests"].get("nvidia.com/gpu", 0)
            == resources["limits"].get("nvidia.com/gpu", 0)
            == gpus
        )
        assert "memory" in resources["requests"]
        assert "memory" in resources["limits"]
        assert scaled[f"tiltstream-{stage}"]["spec"]["maxReplicaCount"] == instances
        assert container["image"].startswith("tiltstream/gpu:")


def test_services_have_probes_on_the_metrics_port_and_drain_on_termination() -> None:
    for name, pod in _pod_specs("overlays/burst").items():
        container = pod["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9400, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}, name
        service = name.removeprefix("tiltstream-").removesuffix("-burst")
        env = {e["name"] for e in container["env"]}
        assert any(e.endswith("_METRICS_PORT") for e in env), name
        assert "TILTSTREAM_KAFKA_SASL_PASSWORD" in env
        if service in JOB_SECONDS:
            # a stage's worst job is several times its typical one; the grace period covers it
            assert pod["terminationGracePeriodSeconds"] >= 10 * JOB_SECONDS[service], name


def test_every_processor_and_stateful_service_has_a_disruption_budget() -> None:
    manifests = rendered("base")
    budgets = by_kind(manifests, "PodDisruptionBudget")
    for name in [*(f"tiltstream-{s}" for s in EBIC), "tiltstream-aggregator", "tiltstream-ispyb-sink"]:
        budget = budgets[name]["spec"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_objects_follow_the_lag_of_their_group_within_the_partitions(overlay: str) -> None:
    manifests = rendered(overlay)
    partitions = {t["spec"]["partitions"] for t in by_kind(manifests, "KafkaTopic").values()
                  if t["metadata"]["labels"]["tiltstream.io/co-partitioned"] == "true"}.pop()  # fmt: skip
    deployments = by_kind(manifests, "Deployment")
    members: dict[str, int] = {}
    for name, scaled in by_kind(manifests, "ScaledObject").items():
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert name in deployments
        kafka = next(t for t in spec["triggers"] if t["type"] == "kafka")
        group = kafka["metadata"]["consumerGroup"]
        command = deployments[name]["spec"]["template"]["spec"]["containers"][0]["command"]
        stage = command[-1]
        if stage in GROUPS:
            assert group == GROUPS[stage]
            assert kafka["metadata"]["topic"] == INPUT_TOPICS[stage]
            assert kafka["authenticationRef"]["name"] == "tiltstream-kafka"
        members[group] = members.get(group, 0) + spec["maxReplicaCount"]
        gpu = (
            "nvidia.com/gpu"
            in deployments[name]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        )
        if gpu:
            assert spec["minReplicaCount"] == 0, f"{name}: GPU stages scale to zero"
            assert (
                "activationLagThreshold" in kafka["metadata"]
                or "activationTarget" in spec["advanced"]["scalingModifiers"]
            )
    for group, most in members.items():
        assert most <= partitions, f"{group}: {most} consumers for {partitions} partitions in {overlay}"


def test_lag_thresholds_follow_the_job_lengths() -> None:
    scaled = by_kind(rendered("base"), "ScaledObject")
    thresholds = {
        s: int(scaled[f"tiltstream-{s}"]["spec"]["triggers"][0]["metadata"]["lagThreshold"]) for s in EBIC
    }
    # a waiting event costs about lagThreshold x job length; keep that under two minutes, and long
    # jobs (reconstruction, denoising) at one event per replica
    for stage, threshold in thresholds.items():
        assert 1 <= threshold * JOB_SECONDS[stage] <= 120, stage
    assert thresholds["reconstruct"] == thresholds["denoise"] == 1
    assert thresholds["motioncorr"] > thresholds["reconstruct"]


def test_burst_pods_run_the_local_service_elsewhere_only_when_saturated() -> None:
    manifests = rendered("overlays/burst")
    deployments, scaled = by_kind(manifests, "Deployment"), by_kind(manifests, "ScaledObject")
    bursts = [name for name in deployments if name.endswith("-burst")]
    assert sorted(bursts) == [
        "tiltstream-denoise-burst",
        "tiltstream-motioncorr-burst",
        "tiltstream-reconstruct-burst",
    ]
    for name in bursts:
        local = name.removesuffix("-burst")
        burst_pod = deployments[name]["spec"]["template"]["spec"]
        local_pod = deployments[local]["spec"]["template"]["spec"]
        assert burst_pod["containers"] == local_pod["containers"]  # same command, group, image, env
        assert burst_pod["nodeSelector"] == {"tiltstream.io/node-pool": "burst"}
        assert "nodeSelector" not in local_pod
        spec = scaled[name]["spec"]
        local_spec = scaled[local]["spec"]
        modifiers = spec["advanced"]["scalingModifiers"]
        threshold = local_spec["triggers"][0]["metadata"]["lagThreshold"]
        capacity = f"{threshold} * ({local_spec['maxReplicaCount']} - stuck)"
        assert modifiers["formula"] == f"lag > {capacity} ? lag - {capacity} : 0"
        assert modifiers["target"] == threshold
        assert {t["name"] for t in spec["triggers"]} == {"lag", "stuck"}
        assert local in next(t for t in spec["triggers"] if t["name"] == "stuck")["metadata"]["query"]


def test_aggregator_keeps_its_table_on_a_volume_with_a_standby() -> None:
    statefulset = by_kind(rendered("base"), "StatefulSet")["tiltstream-aggregator"]["spec"]
    container = statefulset["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["command"] == ["tiltstream", "aggregate"]
    assert statefulset["replicas"] >= 2
    assert int(env["TILTSTREAM_AGGREGATOR_STANDBY_REPLICAS"]) >= 1
    claim = statefulset["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim] == env["TILTSTREAM_AGGREGATOR_DATADIR"]
    assert container["image"].startswith("tiltstream/light:")


def test_ispyb_sink_reads_its_database_url_from_a_secret() -> None:
    deployment = by_kind(rendered("base"), "Deployment")["tiltstream-ispyb-sink"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["TILTSTREAM_ISPYB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tiltstream-ispyb",
        "key": "database-url",
    }
    assert env["TILTSTREAM_ISPYB_GROUP_ID"]["value"] == "tiltstream-ispyb-sink"
    assert not any("value" in e and "password" in e["name"].lower() for e in container["env"])


def test_alerts_cover_lag_failures_and_groups_without_members() -> None:
    rules = by_kind(rendered("base"), "PrometheusRule")["tiltstream"]["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r["expr"] for r in rules}
    assert "kafka_consumergroup_lag" in alerts["TiltstreamConsumerLagGrowing"]
    assert "tiltstream.processing.failed" in alerts["TiltstreamFailuresRising"]
    assert "kafka_consumergroup_members" in alerts["TiltstreamGroupWithoutMembers"]
    monitors = by_kind(rendered("base"), "PodMonitor")
    selected = monitors["tiltstream-services"]["spec"]["selector"]["matchExpressions"][0]["values"]
    components = {
        w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for w in [
            *by_kind(rendered("overlays/burst"), "Deployment").values(),
            *by_kind(rendered("base"), "StatefulSet").values(),
        ]
    }  # fmt: skip
    assert components == set(selected)
