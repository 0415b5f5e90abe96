"""What operators look at: every consumer group's lag, and every tilt series' latest status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
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

__all__ = ["GroupLag", "IspybSchema", "ispyb_schema", "pipeline_groups", "series_statuses"]


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


@dataclass(frozen=True)
class IspybSchema:
    """What ``tiltstream status`` says of the ISPyB database: its kind and schema version, or why not.

    Attributes
    ----------
    database
        The URL, password hidden.
    schema
        :meth:`~tiltstream.connectors.ispyb.probe.SchemaInfo.describe` (``None`` when unreachable).
    version
        ``AdminVar.schemaVersion`` (``None`` when the database has none or cannot be read).
    missing
        What the sink would miss there (it would refuse to start); empty when it can write.
    error
        Why the database could not be read.
    """

    database: str
    schema: str | None
    version: str | None
    missing: tuple[str, ...] = ()
    error: str | None = None


def ispyb_schema(url: str) -> IspybSchema:
    """Probe the ISPyB database at ``url`` as the sink would (its account), without failing on anything."""
    from tiltstream.connectors.ispyb.probe import probe_schema
    from tiltstream.connectors.ispyb.schema import SchemaMismatchError
    from tiltstream.connectors.ispyb.sink import create_engine

    engine = create_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        try:
            info = probe_schema(engine)
            missing: tuple[str, ...] = ()
        except SchemaMismatchError as refused:
            info, missing = probe_schema(engine, require=False), tuple(refused.missing)
        return IspybSchema(where, info.describe(), info.version, missing)
    except sa.exc.SQLAlchemyError as error:
        return IspybSchema(where, None, None, error=f"{error.__class__.__name__}: {error}".splitlines()[0])
    finally:
        engine.dispose()
