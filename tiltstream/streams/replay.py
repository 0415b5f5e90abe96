"""Offset replay: move a consumer group's committed offsets to reprocess (or skip) events.

Because every consumer in tiltstream is idempotent, replaying a topic is how failed work is redone and
how a projection is rebuilt. Like ``kafka-consumer-groups --reset-offsets``, a reset is planned first
(a dry run showing old and new offsets) and executed only on request, and only while the group has no
active members (Kafka refuses otherwise, and a running member would overwrite the new offsets).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from tiltstream.streams.groups import describe_group, group_offsets

__all__ = [
    "GroupActiveError",
    "OffsetChange",
    "ResetKind",
    "ResetSpec",
    "execute_reset",
    "parse_duration",
    "plan_reset",
]


class GroupActiveError(RuntimeError):
    """The group has active members; stop (or scale to zero) its consumers first."""


class ResetKind(StrEnum):
    """How the new offsets are chosen."""

    EARLIEST = "earliest"
    LATEST = "latest"
    DATETIME = "datetime"
    DURATION = "duration"
    SHIFT = "shift"
    OFFSET = "offset"


@dataclass(frozen=True)
class ResetSpec:
    """A reset: the kind and its argument (a datetime, a duration, a shift or an offset)."""

    kind: ResetKind
    at: datetime | None = None
    duration: timedelta | None = None
    amount: int | None = None


@dataclass(frozen=True)
class OffsetChange:
    """One partition's committed offset before and after the reset."""

    topic: str
    partition: int
    current: int | None
    new: int
    low: int
    high: int

    @property
    def events_to_replay(self) -> int:
        """How many events the group will process again (negative: skipped)."""
        current = self.current if self.current is not None else self.low
        return current - self.new


_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_ISO = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")


def parse_duration(text: str) -> timedelta:
    """``PT1H30M`` (ISO 8601, as Kafka's tool takes) or ``1h30m`` / ``2d`` / ``90s``."""
    match = _ISO.match(text.upper()) or _DURATION.match(text.lower())
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration (e.g. PT1H30M or 1h30m)")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def _by_time(
    admin: AdminClient, partitions: list[tuple[str, int]], at: datetime, timeout: float
) -> dict[tuple[str, int], int]:
    millis = int(at.timestamp() * 1000)
    request = {TopicPartition(t, p): OffsetSpec.for_timestamp(millis) for t, p in partitions}
    found = {}
    for tp, future in admin.list_offsets(request, request_timeout=timeout).items():
        found[(tp.topic, tp.partition)] = int(future.result(timeout).offset)
    return found


def plan_reset(
    admin: AdminClient,
    group_id: str,
    spec: ResetSpec,
    topics: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
    timeout: float = 30.0,
) -> list[OffsetChange]:
    """The offsets a reset would commit, clamped to each partition's retained range.

    Parameters
    ----------
    topics
        Topics to reset (all their partitions); by default those the group has committed offsets for.
    now
        The reference time for ``DURATION`` resets.
    """
    current = group_offsets(admin, group_id, topics, timeout)
    if not current:
        raise ValueError(f"group {group_id} has no committed offsets; name the topics to reset with --topic")
    partitions = [(c.topic, c.partition) for c in current]
    by_time: dict[tuple[str, int], int] = {}
    if spec.kind in (ResetKind.DATETIME, ResetKind.DURATION):
        at = (
            spec.at
            if spec.kind is ResetKind.DATETIME
            else (now or datetime.now(UTC)) - (spec.duration or timedelta())
        )
        if at is None:
            raise ValueError("a datetime reset needs a time")
        by_time = _by_time(admin, partitions, at, timeout)
    changes = []
    for c in current:
        position = c.committed if c.committed is not None else c.low
        if spec.kind is ResetKind.EARLIEST:
            target = c.low
        elif spec.kind is ResetKind.LATEST:
            target = c.high
        elif spec.kind is ResetKind.OFFSET:
            target = spec.amount or 0
        elif spec.kind is ResetKind.SHIFT:
            target = position + (spec.amount or 0)
        else:
            found = by_time[(c.topic, c.partition)]
            target = found if found >= 0 else c.high  # nothing at or after that time: the end
        changes.append(
            OffsetChange(c.topic, c.partition, c.committed, min(max(target, c.low), c.high), c.low, c.high)
        )
    return changes


def execute_reset(
    admin: AdminClient, group_id: str, changes: Sequence[OffsetChange], timeout: float = 30.0
) -> None:
    """Commit the planned offsets for ``group_id``.

    Raises
    ------
    GroupActiveError
        When the group has members: they would keep their positions and overwrite the reset.
    """
    group = describe_group(admin, group_id, timeout)
    if group.active:
        hosts = ", ".join(sorted({m.host for m in group.members}))
        raise GroupActiveError(
            f"group {group_id} has {len(group.members)} active member(s) ({hosts}); "
            "stop or scale its consumers to zero, then replay"
        )
    request = ConsumerGroupTopicPartitions(
        group_id, [TopicPartition(c.topic, c.partition, c.new) for c in changes]
    )
    admin.alter_consumer_group_offsets([request], request_timeout=timeout)[group_id].result(timeout)
