"""What operators look at: every consumer group's lag, and every tilt series' latest status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient

from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.groups import (
    GroupDescription,
    PartitionOffsets,
    describe_group,
    group_offsets,
    list_groups,
)
from tiltstream.streams.reader import StartAt, read_events
from tiltstream.streams.serde import AvroSerde

__all__ = ["GroupLag", "pipeline_groups", "series_statuses"]


@dataclass(frozen=True)
class GroupLag:
    """A consumer group, its members and where it stands in each partition it consumes."""

    group: GroupDescription
    partitions: tuple[PartitionOffsets, ...]

    @property
    def lag(self) -> int:
        """Messages waiting for the group, over all its partitions."""
        return sum(p.lag for p in self.partitions)


def pipeline_groups(
    admin: AdminClient, catalogue: Catalogue, only: str | None = None, timeout: float = 30.0
) -> list[GroupLag]:
    """Groups with committed offsets on this catalogue's topics (or just ``only``), with their lag."""
    prefix = f"{catalogue.settings.prefix}."
    result = []
    for group_id in [only] if only else list_groups(admin, timeout):
        offsets = [p for p in group_offsets(admin, group_id, timeout=timeout) if p.topic.startswith(prefix)]
        if not offsets and not only:
            continue
        result.append(GroupLag(describe_group(admin, group_id, timeout), tuple(offsets)))
    return result


def series_statuses(
    settings: KafkaSettings, catalogue: Catalogue, serde: AvroSerde | None = None
) -> dict[str, dict[str, Any]]:
    """The latest ``TiltSeriesStatus`` of every tilt series, by series id (the compacted topic read whole)."""
    latest: dict[str, dict[str, Any]] = {}
    topic = catalogue.topic("tiltseries.status")
    for event in read_events(settings, [topic], start=StartAt.BEGINNING, serde=serde):
        if event.value is not None and event.key is not None:
            latest[event.key] = event.value
    return dict(sorted(latest.items()))
