"""Create or update the catalogue's topics on a cluster, idempotently."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from tiltstream.streams.catalogue import Topic

__all__ = ["ApplyAction", "TopicChange", "TopicDescription", "apply_topics", "describe_topics"]


class ApplyAction(StrEnum):
    """What ``topics apply`` did (or would do) to one topic."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class TopicChange:
    """The outcome for one topic: the action and the differences found."""

    topic: str
    action: ApplyAction
    details: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class TopicDescription:
    """A topic as the cluster reports it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def describe_topics(
    admin: AdminClient, names: Iterable[str], timeout: float = 30.0
) -> dict[str, TopicDescription]:
    """Partitions, replication and the configuration keys tiltstream sets, for the topics that exist."""
    metadata = admin.list_topics(timeout=timeout)
    present = [name for name in names if name in metadata.topics and metadata.topics[name].error is None]
    if not present:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
    configs = {res.name: future.result(timeout) for res, future in admin.describe_configs(resources).items()}
    result = {}
    for name in present:
        partitions = metadata.topics[name].partitions
        replication = len(next(iter(partitions.values())).replicas) if partitions else 0
        config = {key: str(entry.value) for key, entry in configs[name].items()}
        result[name] = TopicDescription(name, len(partitions), replication, config)
    return result


def apply_topics(
    admin: AdminClient, topics: Iterable[Topic], *, dry_run: bool = False, timeout: float = 30.0
) -> list[TopicChange]:
    """Make the cluster's topics match the catalogue.

    Missing topics are created; a topic with fewer partitions gets more (never fewer: that would
    move keys between partitions, so it is refused); differing configuration keys are set with an
    incremental alter. Running it twice changes nothing the second time.

    Parameters
    ----------
    admin
        Admin client for the cluster.
    topics
        Topics as laid out by :class:`~tiltstream.streams.catalogue.Catalogue`.
    dry_run
        Report what would change without changing it.

    Raises
    ------
    ValueError
        When a topic has more partitions on the cluster than the catalogue asks for.
    """
    wanted = list(topics)
    existing = describe_topics(admin, [t.name for t in wanted], timeout)
    changes: list[TopicChange] = []
    to_create: list[NewTopic] = []
    grown: dict[str, int] = {}
    for topic in wanted:
        current = existing.get(topic.name)
        if current is None:
            to_create.append(
                NewTopic(topic.name, topic.partitions, topic.replication_factor, config=dict(topic.config))
            )
            changes.append(TopicChange(topic.name, ApplyAction.CREATED, (f"partitions={topic.partitions}",)))
            continue
        details: list[str] = []
        if current.partitions > topic.partitions:
            raise ValueError(
                f"{topic.name} has {current.partitions} partitions, more than the catalogue's "
                f"{topic.partitions}; Kafka cannot shrink a topic, so set TILTSTREAM_TOPICS_PARTITIONS"
            )
        if current.partitions < topic.partitions:
            details.append(f"partitions {current.partitions} -> {topic.partitions}")
            if not dry_run:
                _wait(admin.create_partitions([NewPartitions(topic.name, topic.partitions)]), timeout)
                grown[topic.name] = topic.partitions
        differing = {k: v for k, v in topic.config.items() if current.config.get(k) != v}
        if differing:
            details.extend(f"{k} {current.config.get(k)} -> {v}" for k, v in sorted(differing.items()))
            if not dry_run:
                entries = [
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in differing.items()
                ]
                resource = ConfigResource(ResourceType.TOPIC, topic.name, incremental_configs=entries)
                _wait(admin.incremental_alter_configs([resource]), timeout)
                _wait_for_config(admin, topic.name, differing, timeout)
        action = ApplyAction.UPDATED if details else ApplyAction.UNCHANGED
        changes.append(TopicChange(topic.name, action, tuple(details)))
    if dry_run:
        return changes
    if to_create:
        _wait(admin.create_topics(to_create, operation_timeout=timeout), timeout)
    _wait_for_partitions(admin, {**grown, **{t.topic: t.num_partitions for t in to_create}}, timeout)
    return changes


def _wait_for_config(admin: AdminClient, name: str, wanted: dict[str, str], timeout: float) -> None:
    """Block until the broker reports ``wanted`` (it applies the controller's records asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        current = describe_topics(admin, [name], timeout).get(name)
        if current is not None and all(current.config.get(k) == v for k, v in wanted.items()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: configuration {wanted} not visible after {timeout} s")
        time.sleep(0.1)


def _wait_for_partitions(admin: AdminClient, wanted: dict[str, int], timeout: float) -> None:
    """Block until each topic of ``wanted`` shows that many partitions, each with a leader.

    The broker applies the controller's records asynchronously: without this, a topic just created or
    grown is briefly missing or shows its old partition count, and ``topics list`` right after
    ``topics apply`` would contradict it.
    """
    if not wanted:
        return
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout)
        ready = all(
            name in metadata.topics
            and metadata.topics[name].error is None
            and len(metadata.topics[name].partitions) >= count
            and all(p.leader >= 0 and p.error is None for p in metadata.topics[name].partitions.values())
            for name, count in wanted.items()
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"topics {sorted(wanted)} not laid out with their partitions after {timeout} s"
            )
        time.sleep(0.1)


def _wait(futures: Mapping[Any, Future[Any]], timeout: float) -> None:
    for key, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            raise RuntimeError(f"{key}: {exc.args[0]}") from exc
