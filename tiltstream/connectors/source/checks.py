"""Refusing values from the microscope that cannot be true, before they become events.

The rules are the event schemas' (:func:`~tiltstream.streams.validation.check_event`): the source
builds the event it would send and refuses the movie (or the whole mdoc, for values every event of
the series would carry) with :class:`~.errors.InvalidAcquisitionValueError` naming the field and the
reason. The producer would refuse the event anyway; refusing here turns it into a ``ProcessingFailed``
for that movie, and the rest of the series carries on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tiltstream.connectors.source.errors import InvalidAcquisitionValueError
from tiltstream.connectors.source.events import SeriesContext, acquisition_ended
from tiltstream.connectors.source.mdoc import MdocInfo
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.validation import check_event, escape_nul, path_problem

__all__ = ["check_movie_event", "check_movie_name", "check_series_values"]


def check_movie_name(name: str) -> None:
    """Refuse a movie file name from ``SubFramePath`` that cannot name a file under a data root."""
    problem = path_problem(name)
    if problem is not None:
        raise InvalidAcquisitionValueError(f"SubFramePath file name {escape_nul(name)!r} {problem}")


def check_movie_event(value: Mapping[str, Any], name: str) -> None:
    """Refuse the ``MovieAcquired`` value made for movie ``name`` if a field cannot be true."""
    try:
        check_event("MovieAcquired", value)
    except InvalidEventError as exc:
        message = f"{escape_nul(name)}: {exc.record}.{exc.field}: {exc.reason}"
        raise InvalidAcquisitionValueError(message) from exc


def check_series_values(ctx: SeriesContext, info: MdocInfo, mdoc_name: str) -> None:
    """Refuse an mdoc whose series-wide values (pixel size, tilt axis) cannot be true.

    They go into the series' ``TiltSeriesAcquisitionEnded``, so that event, as this mdoc would give it,
    is checked.
    """
    value = acquisition_ended(
        ctx, info=info, mdoc=None, reason="completed", ended_at=datetime.now(UTC), acquired_tilt_count=0
    )
    try:
        check_event("TiltSeriesAcquisitionEnded", value)
    except InvalidEventError as exc:
        raise InvalidAcquisitionValueError(f"{mdoc_name}: {exc.record}.{exc.field}: {exc.reason}") from exc
