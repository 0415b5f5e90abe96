"""k8s/ renders with the real kustomize, validates against the Kubernetes
schemas (kubernetes-validate, offline), and its Strimzi, KEDA and Prometheus objects have what their
operators require."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_helpers import CRD_KINDS, K8S, OVERLAYS, by_kind, check_crd_object, rendered
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.k8s.render import KustomizeError, ToolNotFoundError, object_id, render_kustomization
from tiltstream.settings import CliSettings

#: The oldest Kubernetes release the manifests are checked against (policy/v1, HPA v2 behaviour).
KUBERNETES_VERSION = "1.30"

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "app", "labels": {"a": "1"}},
    "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "repo/app:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    },
                    {"name": "side", "image": "other:2"},
                ],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
        },
    },
}
SCALED = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "app"},
    "spec": {"scaleTargetRef": {"name": "app"}, "triggers": [{"type": "kafka", "metadata": {"a": "1"}}]},
}


def _tree(tmp_path: Path, kustomization: Mapping[str, object], files: Mapping[str, object]) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    (base / "objects.yaml").write_text(yaml.safe_dump_all([DEPLOYMENT, SCALED]))
    (base / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["objects.yaml"]}))
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    for name, content in files.items():
        (overlay / name).write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["../base"], **kustomization}))
    return overlay


def test_the_real_kustomize_renders_patches_namespace_labels_and_images(tmp_path: Path) -> None:
    kustomization = {
        "namespace": "ns",
        "labels": [{"pairs": {"team": "t"}, "includeTemplates": True}],
        "images": [{"name": "repo/app", "newName": "registry.example/app", "newTag": "2"}],
        "patches": [{"target": {"kind": "Deployment", "labelSelector": "a=1"},
                     "patch": "- {op: add, path: /spec/replicas, value: 2}"},
                    {"patch": yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                                              "metadata": {"name": "app"}, "spec": {"template": {"spec": {
                                              "containers": [{"name": "main", "env": [
                                                  {"name": "B", "value": "3"}]}]}}}})}],
    }  # fmt: skip
    manifests = render_kustomization(_tree(tmp_path, kustomization, {}))
    deployment, scaled = by_kind(manifests, "Deployment")["app"], by_kind(manifests, "ScaledObject")["app"]
    assert deployment["metadata"]["namespace"] == scaled["metadata"]["namespace"] == "ns"
    assert deployment["spec"]["replicas"] == 2
    main, side = deployment["spec"]["template"]["spec"]["containers"]
    assert (main["image"], side["image"]) == ("registry.example/app:2", "other:2")
    env = sorted(main["env"], key=lambda e: e["name"])
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]  # merged by name
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "x", "team": "t"}
    assert scaled["metadata"]["labels"] == {"team": "t"}


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ({"resources": ["../missing"]}, "missing"),
        ({"resources": ["../base", "again.yaml"]}, "already registered id"),
        ({"patches": [{"path": "absent.yaml"}]}, "absent.yaml"),
    ],
)
def test_a_tree_kustomize_refuses_raises_with_its_message(
    tmp_path: Path, kustomization: dict[str, object], message: str
) -> None:
    overlay = _tree(tmp_path, kustomization, {"again.yaml": DEPLOYMENT})
    with pytest.raises(KustomizeError, match=message):
        render_kustomization(overlay)


def test_a_missing_kustomize_names_the_install_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ToolNotFoundError, match=r"bash scripts/install\.sh"):
        render_kustomization(K8S / "base")


def test_the_overlays_change_what_they_say_they_change() -> None:
    base, facility = rendered("base"), rendered("overlays/facility-20")
    assert {object_id(m) for m in base} == {object_id(m) for m in facility}
    limits = {n: m["spec"]["maxReplicaCount"] for n, m in by_kind(facility, "ScaledObject").items()}
    assert limits["tiltstream-motioncorr"] == 24
    topics = by_kind(facility, "KafkaTopic").values()
    assert {t["spec"]["partitions"] for t in topics if t["metadata"]["labels"].get(
        "tiltstream.io/co-partitioned") == "true"} == {48}  # fmt: skip
    assert by_kind(facility, "ConfigMap")["tiltstream-kafka"]["data"]["TILTSTREAM_TOPICS_PARTITIONS"] == "48"
    assert {object_id(m) for m in base} < {object_id(m) for m in rendered("overlays/burst")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate_against_the_kubernetes_schemas(overlay: str) -> None:
    core = [m for m in rendered(overlay) if (m["apiVersion"], m["kind"]) not in CRD_KINDS]
    assert {m["kind"] for m in core} >= {
        "Deployment",
        "StatefulSet",
        "PodDisruptionBudget",
        "Service",
        "ConfigMap",
    }
    for manifest in core:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_deployment() -> None:
    broken = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    broken["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": [1]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_crd_objects_have_what_their_operators_require(overlay: str) -> None:
    crd = [m for m in rendered(overlay) if (m["apiVersion"], m["kind"]) in CRD_KINDS]
    kinds = {m["kind"] for m in crd}
    assert kinds == {k for _, k in CRD_KINDS}
    problems = {object_id(m): check_crd_object(m) for m in crd}
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_crd_checks_catch_broken_objects() -> None:
    scaled = yaml.safe_load(yaml.safe_dump(SCALED))
    scaled["spec"]["triggers"][0]["metadata"] = {"lagThreshold": 5}
    assert any("must be strings" in p for p in check_crd_object(scaled))
    assert any("bootstrapServers" in p for p in check_crd_object(scaled))
    kafka = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "Kafka",
        "metadata": {"name": "k"},
        "spec": {"kafka": {}},
    }
    assert "missing spec.kafka.listeners" in check_crd_object(kafka)
    assert any("KRaft" in p for p in check_crd_object(kafka))
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum(x"}]}]}}  # fmt: skip
    assert any("unbalanced" in p for p in check_crd_object(rule))


def test_every_object_is_in_the_tiltstream_namespace() -> None:
    for overlay in OVERLAYS:
        assert {m["metadata"].get("namespace") for m in rendered(overlay)} == {"tiltstream"}
        assert all(
            m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tiltstream" for m in rendered(overlay)
        )


def test_the_render_command_prints_kustomize_output_and_refuses_a_broken_tree(tmp_path: Path) -> None:
    app = create_app(CliSettings())
    result = CliRunner().invoke(app, ["k8s", "render", str(K8S / "overlays/burst")])
    assert result.exit_code == 0, result.output
    printed = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    assert [object_id(m) for m in printed] == [object_id(m) for m in rendered("overlays/burst")]
    broken = _tree(tmp_path, {"resources": ["../missing"]}, {})
    result = CliRunner().invoke(app, ["k8s", "render", str(broken)])
    assert result.exit_code == 1
    assert "missing" in result.output
