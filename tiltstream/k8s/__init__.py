"""Kubernetes support: the Strimzi ``KafkaTopic`` manifests generated from the topic catalogue, and a
small Kustomize renderer for the subset of Kustomize that ``k8s/`` uses (tests, the scaling simulation
and ``tiltstream k8s render`` read the manifests through it)."""

from __future__ import annotations

from tiltstream.k8s.kustomize import KustomizeError, render_kustomization
from tiltstream.k8s.topics import PIPELINE_GROUPS, kafka_topic_manifests, kafka_topics_yaml

__all__ = [
    "PIPELINE_GROUPS",
    "KustomizeError",
    "kafka_topic_manifests",
    "kafka_topics_yaml",
    "render_kustomization",
]
