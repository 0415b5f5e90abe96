"""Strimzi ``KafkaTopic`` manifests from the topic catalogue and the stage registry (one source of truth).

``k8s/base/kafka/topics.yaml`` is this module's output (``tiltstream k8s topics``): what ``topics apply``
lays out (:func:`~tiltstream.stages.laid_out_topics`), so every registry group's dead-letter topic is
declared. A test checks that the committed file agrees, so a topic added to
:mod:`tiltstream.streams.catalogue` or a group added to the registry without regenerating fails the suite.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

import yaml

from tiltstream.stages import REGISTRY, laid_out_topics
from tiltstream.streams.catalogue import Catalogue, Topic

__all__ = ["STRIMZI_API_VERSION", "kafka_topic_manifests", "kafka_topics_yaml"]

#: The Strimzi API version of every Strimzi object in ``k8s/``.
STRIMZI_API_VERSION = "kafka.strimzi.io/v1beta2"


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
    catalogue: Catalogue, *, cluster: str, dlq_groups: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """What ``topics apply`` lays out, as ``KafkaTopic``s: every catalogue topic and the dead-letter
    topic of each group.

    Parameters
    ----------
    catalogue
        The catalogue laid out with the cluster's settings (prefix, partitions, replication).
    cluster
        The Strimzi ``Kafka`` resource's name (the ``strimzi.io/cluster`` label).
    dlq_groups
        Consumer groups whose ``<prefix>.dlq.<group>`` topic is declared (default: the registry's).
    """
    if dlq_groups is None:
        topics = laid_out_topics(catalogue)
    else:
        topics = [*catalogue.all_topics(), *(catalogue.dlq(group) for group in dlq_groups)]
    schemas = catalogue.schemas_topic().name
    return [_kafka_topic(topic, cluster, co_partitioned=topic.name != schemas) for topic in topics]


def kafka_topics_yaml(catalogue: Catalogue, *, cluster: str, dlq_groups: Sequence[str] | None = None) -> str:
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
    if dlq_groups is not None and tuple(dlq_groups) != REGISTRY.groups():
        for group in dlq_groups:
            argv += ["--dlq-group", group]
    header = (
        "# Generated from the topic catalogue (tiltstream/streams/catalogue.py) and the stage registry "
        "(tiltstream/stages/); do not edit by hand.\n"
        f"# Regenerate with:  {shlex.join(argv)} --output <this file>\n"
    )
    documents = kafka_topic_manifests(catalogue, cluster=cluster, dlq_groups=dlq_groups)
    body = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=110)
    return header + "---\n" + body
