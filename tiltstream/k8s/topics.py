"""Strimzi ``KafkaTopic`` manifests from the topic catalogue in code (one source of truth).

``k8s/base/kafka/topics.yaml`` is this module's output (``tiltstream k8s topics``); a test checks that
the committed file and the catalogue agree, so a topic added to :mod:`tiltstream.streams.catalogue`
without regenerating the manifests fails the suite.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

import yaml

from tiltstream.streams.catalogue import Catalogue, Topic

__all__ = ["PIPELINE_GROUPS", "STRIMZI_API_VERSION", "kafka_topic_manifests", "kafka_topics_yaml"]

#: The Strimzi API version of every Strimzi object in ``k8s/``.
STRIMZI_API_VERSION = "kafka.strimzi.io/v1beta2"

#: The consumer groups the Kubernetes deployment runs; each gets its dead-letter topic declared.
PIPELINE_GROUPS: tuple[str, ...] = (
    "tiltstream-motioncorr",
    "tiltstream-ctf",
    "tiltstream-reconstruct",
    "tiltstream-denoise",
    "tiltstream-aggregator",
    "tiltstream-ispyb-sink",
)


def _kafka_topic(topic: Topic, cluster: str, *, co_partitioned: bool) -> dict[str, Any]:
    """One ``KafkaTopic``: named after the topic (catalogue names are valid DNS-1123 subdomains).

    ``tiltstream.io/co-partitioned`` marks the topics that must all share one partition count (every
    topic but the schemas topic), so an overlay can change that count in one patch.
    """
    annotations = {"tiltstream.io/doc": topic.doc, "tiltstream.io/key": topic.key}
    if topic.record is not None:
        annotations["tiltstream.io/record"] = topic.record
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaTopic",
        "metadata": {
            "name": topic.name.lower(),
            "labels": {
                "strimzi.io/cluster": cluster,
                "app.kubernetes.io/part-of": "tiltstream",
                "tiltstream.io/co-partitioned": "true" if co_partitioned else "false",
            },
            "annotations": annotations,
        },
        "spec": {
            "topicName": topic.name,
            "partitions": topic.partitions,
            "replicas": topic.replication_factor,
            "config": dict(sorted(topic.config.items())),
        },
    }


def kafka_topic_manifests(
    catalogue: Catalogue, *, cluster: str, dlq_groups: Sequence[str] = PIPELINE_GROUPS
) -> list[dict[str, Any]]:
    """Every catalogue topic (``all_topics()``) and the dead-letter topic of each group, as ``KafkaTopic``s.

    Parameters
    ----------
    catalogue
        The catalogue laid out with the cluster's settings (prefix, partitions, replication).
    cluster
        The Strimzi ``Kafka`` resource's name (the ``strimzi.io/cluster`` label).
    dlq_groups
        Consumer groups whose ``<prefix>.dlq.<group>`` topic is declared too.
    """
    topics = [*catalogue.all_topics(), *(catalogue.dlq(group) for group in dlq_groups)]
    schemas = catalogue.schemas_topic().name
    return [_kafka_topic(topic, cluster, co_partitioned=topic.name != schemas) for topic in topics]


def kafka_topics_yaml(
    catalogue: Catalogue, *, cluster: str, dlq_groups: Sequence[str] = PIPELINE_GROUPS
) -> str:
    """The manifests as one multi-document YAML file, headed by the command that regenerates it."""
    settings = catalogue.settings
    argv = [
        "tiltstream",
        "k8s",
        "topics",
        "--cluster",
        cluster,
        "--prefix",
        settings.prefix,
        "--partitions",
        str(settings.partitions),
        "--replication-factor",
        str(settings.replication_factor),
        "--min-insync-replicas",
        str(settings.min_insync_replicas),
    ]
    if tuple(dlq_groups) != PIPELINE_GROUPS:
        for group in dlq_groups:
            argv += ["--dlq-group", group]
    header = (
        "# Generated from the topic catalogue (tiltstream/streams/catalogue.py); do not edit by hand.\n"
        f"# Regenerate with:  {shlex.join(argv)} --output <this file>\n"
    )
    documents = kafka_topic_manifests(catalogue, cluster=cluster, dlq_groups=dlq_groups)
    body = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=110)
    return header + "---\n" + body
