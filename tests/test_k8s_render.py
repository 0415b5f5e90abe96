"""k8s/ renders (the Kustomize subset of tiltstream.k8s.kustomize), validates against the Kubernetes
schemas (kubernetes-validate, offline), and its Strimzi, KEDA and Prometheus objects have what their
operators require."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_helpers import CRD_KINDS, OVERLAYS, check_crd_object, rendered

from tiltstream.k8s.kustomize import KustomizeError, object_id, render_kustomization

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


def test_strategic_merge_uses_merge_keys_for_builtin_kinds_and_replaces_crd_lists(tmp_path: Path) -> None:
    patch = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "labels": {"a": None}},
        "spec": {"template": {"spec": {
            "containers": [{"name": "main", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},  # noqa: E501
                           {"name": "side", "$patch": "delete"}],
            "tolerations": [{"key": "z", "operator": "Exists"}]}}},
    }  # fmt: skip
    crd_patch = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "app"},
                 "spec": {"triggers": [{"type": "cpu", "metadata": {"b": "2"}}]}}  # fmt: skip
    overlay = _tree(
        tmp_path,
        {"patches": [{"path": "p.yaml"}, {"path": "q.yaml"}]},
        {"p.yaml": patch, "q.yaml": crd_patch},
    )
    deployment, scaled = render_kustomization(overlay)
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["main"]
    assert pod["containers"][0]["image"] == "repo/app:1"
    assert pod["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert pod["tolerations"] == [{"key": "z", "operator": "Exists"}]  # no merge key: replaced
    assert "a" not in deployment["metadata"]["labels"]  # null deletes
    assert scaled["spec"]["triggers"] == [{"type": "cpu", "metadata": {"b": "2"}}]
    assert scaled["spec"]["scaleTargetRef"] == {"name": "app"}


def test_json6902_targets_namespace_labels_and_images(tmp_path: Path) -> None:
    kustomization = {
        "namespace": "ns",
        "labels": [{"pairs": {"team": "t"}, "includeTemplates": True}],
        "images": [{"name": "repo/app", "newName": "registry.example/app", "newTag": "2"}],
        "patches": [{"target": {"kind": "Deployment", "labelSelector": "a=1"},
                     "patch": "- {op: replace, path: /spec/template/spec/containers/1/image, value: o:3}\n"
                              "- {op: add, path: /spec/replicas, value: 2}"}],
    }  # fmt: skip
    deployment, scaled = render_kustomization(_tree(tmp_path, kustomization, {}))
    assert deployment["metadata"]["namespace"] == scaled["metadata"]["namespace"] == "ns"
    assert deployment["spec"]["replicas"] == 2
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == ["registry.example/app:2", "o:3"]
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "x", "team": "t"}
    assert scaled["metadata"]["labels"] == {"team": "t"}
    assert "template" not in scaled["spec"]


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ({"namePrefix": "x-"}, "unsupported kustomization fields"),
        ({"labels": [{"pairs": {"a": "b"}, "includeSelectors": True}]}, "includeSelectors"),
        (
            {"patches": [{"target": {"kind": "Service"}, "patch": "- {op: remove, path: /spec}"}]},
            "matches no resource",
        ),
        ({"patches": [{"patch": "- {op: remove, path: /spec}"}]}, "needs a target"),
        ({"resources": ["../base", "../base/objects.yaml"]}, "two objects with id"),
    ],
)
def test_what_it_cannot_render_it_refuses(
    tmp_path: Path, kustomization: dict[str, object], message: str
) -> None:
    with pytest.raises(KustomizeError, match=message):
        render_kustomization(_tree(tmp_path, kustomization, {}))


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
