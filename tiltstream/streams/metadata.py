"""The metadata every event carries, with deterministic event ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import tiltstream

__all__ = ["EVENT_ID_NAMESPACE", "event_id", "make_metadata"]

#: Namespace of the UUIDv5 event ids (fixed forever: changing it changes every id).
EVENT_ID_NAMESPACE = uuid.UUID("5f0c1e8e-3b4a-5c56-9d1e-7a11757472ea")


def event_id(record: str, *parts: object) -> str:
    """A deterministic event id: UUIDv5 of the record name and the parts that identify the fact.

    Re-emitting the same fact (after a crash, on redelivery) gives the same id, so consumers can
    deduplicate. Include the attempt number in ``parts`` when a reprocessing should be distinct.
    """
    name = "\x1f".join([record.rpartition(".")[2], *map(str, parts)])
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def make_metadata(
    record: str,
    *,
    service: str,
    microscope: str,
    session_id: str,
    tilt_series_id: str,
    key: tuple[object, ...],
    causation_id: str | None = None,
    attempt: int = 1,
    occurred_at: datetime | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """Build the ``metadata`` field of an event.

    Parameters
    ----------
    record
        The record being built, e.g. ``"MovieMotionCorrected"``.
    service
        The producing service, e.g. ``"motioncorr"``.
    microscope, session_id, tilt_series_id
        Where the data come from.
    key
        What identifies this fact (with ``causation_id`` and ``attempt``) for the event id.
    causation_id
        The event this one was made from.
    attempt
        1 unless reprocessing.
    occurred_at
        When the fact happened; now when omitted.
    instance
        Host or pod name.
    """
    return {
        "event_id": event_id(record, tilt_series_id, *key, causation_id or "", attempt),
        "occurred_at": occurred_at or datetime.now(UTC),
        "producer": {"service": service, "version": tiltstream.__version__, "instance": instance},
        "microscope": microscope,
        "session_id": session_id,
        "tilt_series_id": tilt_series_id,
        "causation_id": causation_id,
        "attempt": attempt,
    }
