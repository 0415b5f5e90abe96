"""Consumer groups as an operator sees them: members, state, committed offsets and lag."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

__all__ = [
    "GroupDescription",
    "GroupMember",
    "PartitionOffsets",
    "describe_group",
    "group_offsets",
    "list_groups",
    "watermarks",
]


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group and the partitions it holds."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupDescription:
    """A consumer group's state (``STABLE``, ``EMPTY``, ``DEAD`` ...) and members."""

    group_id: str
    state: str
    members: tuple[GroupMember, ...]

    @property
    def active(self) -> bool:
        """True while any member is joined: offsets cannot be altered then."""
        return bool(self.members)


@dataclass(frozen=True)
class PartitionOffsets:
    """Where a group stands in one partition: committed offset (None: never committed) and the log's ends."""

    topic: str
    partition: int
    committed: int | None
    low: int
    high: int

    @property
    def lag(self) -> int:
        """Messages the group has still to process in this partition."""
        position = self.committed if self.committed is not None else self.low
        return max(self.high - max(position, self.low), 0)


def list_groups(admin: AdminClient, timeout: float = 30.0) -> list[str]:
    """Every consumer group the cluster knows, sorted."""
    result = admin.list_consumer_groups(request_timeout=timeout).result(timeout)
    return sorted(listing.group_id for listing in result.valid)


def describe_group(admin: AdminClient, group_id: str, timeout: float = 30.0) -> GroupDescription:
    """State and members of ``group_id`` (a group that never existed is reported ``DEAD``)."""
    description = admin.describe_consumer_groups([group_id], request_timeout=timeout)[group_id].result(
        timeout
    )
    members = []
    for member in description.members:
        assigned = member.assignment.topic_partitions if member.assignment else []
        members.append(
            GroupMember(
                member_id=member.member_id,
                client_id=member.client_id,
                host=member.host,
                partitions=tuple(sorted((tp.topic, tp.partition) for tp in assigned)),
            )
        )
    state = getattr(description.state, "name", str(description.state))
    return GroupDescription(group_id, state, tuple(members))


def watermarks(
    admin: AdminClient, partitions: Iterable[tuple[str, int]], timeout: float = 30.0
) -> dict[tuple[str, int], tuple[int, int]]:
    """Earliest and latest offset of each partition."""
    wanted = list(partitions)
    if not wanted:
        return {}
    ends: dict[tuple[str, int], list[int]] = {p: [0, 0] for p in wanted}
    specs = (OffsetSpec.earliest(), OffsetSpec.latest())  # type: ignore[no-untyped-call]
    for index, spec in enumerate(specs):
        request = {TopicPartition(topic, partition): spec for topic, partition in wanted}
        for tp, future in admin.list_offsets(request, request_timeout=timeout).items():
            ends[(tp.topic, tp.partition)][index] = int(future.result(timeout).offset)
    return {p: (low, high) for p, (low, high) in ends.items()}


def _topic_partitions(admin: AdminClient, topics: Sequence[str], timeout: float) -> list[tuple[str, int]]:
    metadata = admin.list_topics(timeout=timeout)
    found = []
    for topic in topics:
        entry = metadata.topics.get(topic)
        if entry is None or entry.error is not None:
            raise KeyError(f"topic {topic} does not exist")
        found += [(topic, number) for number in sorted(entry.partitions)]
    return found


def group_offsets(
    admin: AdminClient, group_id: str, topics: Sequence[str] | None = None, timeout: float = 30.0
) -> list[PartitionOffsets]:
    """Committed offsets and log ends of ``group_id``.

    Parameters
    ----------
    topics
        Every partition of these topics (committed or not); by default the partitions the group has
        committed offsets for.
    """
    request = ConsumerGroupTopicPartitions(
        group_id,
        [TopicPartition(t, p) for t, p in _topic_partitions(admin, topics, timeout)] if topics else None,
    )
    result = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group_id].result(timeout)
    committed = {
        (tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
        for tp in result.topic_partitions or []
    }
    ends = watermarks(admin, committed, timeout)
    return [
        PartitionOffsets(topic, partition, committed[(topic, partition)], *ends[(topic, partition)])
        for topic, partition in sorted(committed)
    ]
