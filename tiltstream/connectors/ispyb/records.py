"""The records the ISPyB sink writes, as the typed records of :mod:`tiltstream.streams.events`.

:func:`sink_event` is the sink's one conversion from a decoded value (the dict form) to its typed record;
everything after it (the writer, the id chain) reads typed fields, so mypy checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from tiltstream.streams.events import (
    CODECS,
    CtfEstimated,
    MovieAcquired,
    MovieMotionCorrected,
    ProcessingFailed,
    ReconstructionRequested,
    TiltSeriesAcquisitionEnded,
    TomogramDenoised,
    TomogramReconstructed,
)

__all__ = ["SINK_RECORDS", "SINK_TYPES", "SinkEvent", "VersionedEvent", "sink_event"]

#: An event the sink writes.
SinkEvent: TypeAlias = (
    MovieAcquired
    | TiltSeriesAcquisitionEnded
    | MovieMotionCorrected
    | CtfEstimated
    | ReconstructionRequested
    | TomogramReconstructed
    | TomogramDenoised
    | ProcessingFailed
)

#: An event of one reconstruction version (it names its request and version).
VersionedEvent: TypeAlias = ReconstructionRequested | TomogramReconstructed | TomogramDenoised

#: The record classes the sink writes (every other record is skipped).
SINK_TYPES: tuple[type[SinkEvent], ...] = (
    MovieAcquired,
    TiltSeriesAcquisitionEnded,
    MovieMotionCorrected,
    CtfEstimated,
    ReconstructionRequested,
    TomogramReconstructed,
    TomogramDenoised,
    ProcessingFailed,
)

#: Their short record names, e.g. ``MovieAcquired``.
SINK_RECORDS: tuple[str, ...] = tuple(CODECS[kind].record.rpartition(".")[2] for kind in SINK_TYPES)

_BY_NAME: dict[str, type[SinkEvent]] = dict(zip(SINK_RECORDS, SINK_TYPES, strict=True))


def sink_event(record: str, value: Mapping[str, Any]) -> SinkEvent | None:
    """The typed record of ``value``, an event of ``record`` (short name); ``None`` when the sink skips it.

    Raises
    ------
    KeyError, TypeError
        When ``value`` lacks a field of the record (a permanent error: the event is dead-lettered).
    """
    kind = _BY_NAME.get(record)
    return None if kind is None else kind.from_dict(value)
