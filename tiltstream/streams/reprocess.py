"""Targeted reinjection: re-emit the events a stage consumes for one tilt series, as a new attempt.

``tiltstream reprocess TILT_SERIES --from STAGE`` reads the series' latest input events for that stage
from the log and sends them again with ``attempt`` raised by one (a new deterministic event id whose
``causation_id`` is the original), so the stage's consumers redo the work — after a fix, or with changed
parameters — while every earlier fact stays in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tiltstream.settings import KafkaSettings
from tiltstream.stages import Scope, Stage
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.metadata import event_id
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import ReadEvent, StartAt, read_events
from tiltstream.streams.serde import AvroSerde

__all__ = ["Reemission", "reemit", "reprocess_plan"]


@dataclass(frozen=True)
class Reemission:
    """An input event to send again: the original and its new attempt."""

    record: str
    original: dict[str, Any]
    value: dict[str, Any]


def _latest_only(events: Sequence[ReadEvent], field: str, scope: Scope) -> list[dict[str, Any]]:
    """The newest attempt of each input; for per-series inputs only the newest version."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        value = event.value
        if value is None:
            continue
        subject = str(value[field])
        if subject not in latest or value["metadata"]["attempt"] >= latest[subject]["metadata"]["attempt"]:
            latest[subject] = value
    values = list(latest.values())
    if scope is Scope.SERIES and values:
        newest = max(v["version"] for v in values)
        values = [v for v in values if v["version"] == newest]
    return values


def reprocess_plan(
    settings: KafkaSettings,
    catalogue: Catalogue,
    tilt_series_id: str,
    stage: Stage,
    serde: AvroSerde | None = None,
    update: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> list[Reemission]:
    """The events :func:`reemit` would send for ``tilt_series_id`` from ``stage`` on.

    ``stage`` (a registry declaration) names the record it consumes and the field that tells one
    input from another. ``update`` (record, value) -> value may bring an input up to date before it is
    sent again (the session's newest parameters for a movie: ``with_latest_parameters``).
    """
    record, field = stage.input_record, stage.subject_field
    topic = catalogue.for_record(record)
    events = list(read_events(settings, [topic], start=StartAt.BEGINNING, key=tilt_series_id, serde=serde))
    plan = []
    for original in _latest_only(events, field, stage.scope):
        metadata = dict(original["metadata"])
        attempt = int(metadata["attempt"]) + 1
        metadata.update(
            event_id=event_id(record, tilt_series_id, original[field], "reprocess", attempt),
            causation_id=original["metadata"]["event_id"],
            attempt=attempt,
            producer={**metadata["producer"], "service": "operator"},
        )
        value = {**original, "metadata": metadata}
        plan.append(Reemission(record, original, value if update is None else update(record, value)))
    return plan


def reemit(producer: EventProducer, plan: Sequence[Reemission]) -> int:
    """Send the planned events and wait for the broker's acknowledgement; returns how many."""
    deliveries = [producer.send(item.record, item.value) for item in plan]
    producer.wait(deliveries)
    return len(deliveries)
