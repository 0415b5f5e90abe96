"""Kubernetes support: the Strimzi ``KafkaTopic`` manifests generated from the topic catalogue, the
processors' manifests generated from the stage registry, and rendering ``k8s/`` with the real ``kustomize``
(tests, the scaling simulation and ``tiltstream k8s render`` read the manifests through it)."""

from __future__ import annotations

from tiltstream.k8s.generated import processor_files, write_processor_files
from tiltstream.k8s.render import KustomizeError, ToolNotFoundError, find_tool, render_kustomization
from tiltstream.k8s.topics import kafka_topic_manifests, kafka_topics_yaml

__all__ = [
    "KustomizeError",
    "ToolNotFoundError",
    "find_tool",
    "kafka_topic_manifests",
    "kafka_topics_yaml",
    "processor_files",
    "render_kustomization",
    "write_processor_files",
]
