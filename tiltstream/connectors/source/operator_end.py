"""``tiltstream acquisition end``: an operator declares a tilt series finished."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tiltstream.connectors.source.events import SERVICE
from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_producer
from tiltstream.streams.metadata import make_metadata
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import read_events

__all__ = ["AlreadyEndedError", "UnknownSeriesError", "end_acquisition"]


class UnknownSeriesError(LookupError):
    """No ``MovieAcquired`` of that tilt series is on the topic."""


class AlreadyEndedError(RuntimeError):
    """The series' end was announced already."""


def end_acquisition(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    tilt_series_id: str,
    *,
    since: datetime | None = None,
    force: bool = False,
    producer: EventProducer | None = None,
) -> dict[str, Any]:
    """Emit ``TiltSeriesAcquisitionEnded`` (reason ``operator``) for a series, from its movies' events.

    The counts come from the series' ``MovieAcquired`` events (distinct movies, retakes included, as
    the watcher counts them); the expected count is the acquired one: nothing more is coming.

    Raises
    ------
    UnknownSeriesError
        No movie of the series was announced.
    AlreadyEndedError
        Its end is on the topic already (unless ``force``).
    """
    movies = [
        e.value
        for e in read_events(kafka, [catalogue.for_record("MovieAcquired")], since=since, key=tilt_series_id)
        if e.value is not None
    ]
    if not movies:
        raise UnknownSeriesError(f"no MovieAcquired for tilt series {tilt_series_id!r} on the topic")
    ended = [
        e.value
        for e in read_events(
            kafka, [catalogue.for_record("TiltSeriesAcquisitionEnded")], since=since, key=tilt_series_id
        )
        if e.value is not None
    ]
    if ended and not force:
        raise AlreadyEndedError(f"{tilt_series_id} already ended ({ended[0]['reason']})")
    distinct = {m["movie_id"] for m in movies}  # a re-emitted event carries the same movie
    first = movies[0]["metadata"]
    now = datetime.now(UTC)
    value = {
        "metadata": make_metadata(
            "TiltSeriesAcquisitionEnded",
            service=SERVICE,
            microscope=first["microscope"],
            session_id=first["session_id"],
            tilt_series_id=tilt_series_id,
            key=("operator",),
            occurred_at=now,
        ),
        "ended_at": now,
        "expected_tilt_count": len(distinct),
        "acquired_tilt_count": len(distinct),
        "mdoc": movies[-1]["mdoc"],
        "reason": "operator",
        "tilt_axis_angle_degrees": movies[-1]["tilt_axis_angle_degrees"],
        "pixel_size_angstroms": movies[-1]["pixel_size_angstroms"],
    }
    producer = producer or EventProducer(create_producer(kafka), catalogue)
    producer.wait([producer.send("TiltSeriesAcquisitionEnded", value)])
    return value
