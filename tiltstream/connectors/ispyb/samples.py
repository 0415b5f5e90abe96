"""A simulated session's events for the sink's tests, benchmarks and demo, built from ``sample_event``.

Each tilt series has its movies acquired, motion-corrected and CTF-estimated, its acquisition ended, and
reconstruction versions 1..``versions`` requested, reconstructed and denoised. Series number
``failed_series`` (if any) has one movie whose motion correction failed instead.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from tiltstream.streams.metadata import event_id
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import schemas_directory

__all__ = ["SessionEvent", "sample", "session_events", "versioned_event"]

SessionEvent = tuple[str, dict[str, Any]]

_PER_TILT = ("MovieAcquired", "MovieMotionCorrected", "CtfEstimated")
_PER_VERSION = ("ReconstructionRequested", "TomogramReconstructed", "TomogramDenoised")


def versioned_event(record: str, series: int, version: int, session: str = "cm40000-1") -> dict[str, Any]:
    """``sample_event(record, series)`` rewritten as reconstruction ``version`` (new request, new files)."""
    value = sample(record, series, 0, session)
    if version == 1:
        return value
    request = value["request_id"].removesuffix(":v1") + f":v{version}"
    value["request_id"] = request
    value["version"] = version
    value["metadata"]["event_id"] = event_id(record, request)
    for field in ("tomogram", "aligned_stack", "denoised_tomogram"):
        if field in value:
            value[field] = {**value[field], "path": value[field]["path"].replace(".v1.", f".v{version}.")}
    for tilt in value.get("tilt_alignments", []):
        tilt["refined_tilt_angle_degrees"] += 0.1 * (version - 1)
    if record == "TomogramReconstructed":
        value["global_alignment_quality"] = 0.8 + 0.05 * (version - 1)
    return value


@cache
def _defaults(record: str) -> dict[str, Any]:
    """The top-level fields of ``record``'s current schema that have defaults (newer optional fields)."""
    schema = json.loads((schemas_directory() / f"tiltstream.events.{record}.avsc").read_text())
    return {field["name"]: field["default"] for field in schema["fields"] if "default" in field}


def sample(record: str, series: int = 1, tilt: int = 0, session: str = "cm40000-1") -> dict[str, Any]:
    """``sample_event`` completed with the defaults of fields added since, moved to ``session``."""
    value: dict[str, Any] = {**_defaults(record), **sample_event(record, series, tilt)}
    moved: dict[str, Any] = _in_session(value, session)
    return moved


def _in_session(value: Any, session: str) -> Any:
    """Move an event of the samples' visit ``cm40000-1`` to visit ``session`` (paths and ids too)."""
    if session == "cm40000-1":
        return value
    if isinstance(value, dict):
        return {key: _in_session(item, session) for key, item in value.items()}
    if isinstance(value, list):
        return [_in_session(item, session) for item in value]
    if isinstance(value, str):
        return value.replace("cm40000-1", session)
    return value


def session_events(
    series_count: int = 3,
    tilts: int = 41,
    *,
    versions: int = 2,
    failed_series: int | None = None,
    session: str = "cm40000-1",
    first_series: int = 1,
) -> list[SessionEvent]:
    """Every event of a session, in acquisition order: ``(record, value)`` pairs.

    Parameters
    ----------
    series_count
        Tilt series (positions) ``first_series`` .. ``first_series + series_count - 1``.
    tilts
        Tilts per series (at most 41, the samples' dose-symmetric scheme).
    versions
        Reconstruction versions per series.
    failed_series
        The series whose last tilt fails motion correction (its CTF is then missing too).
    session
        The visit.
    first_series
        Number of the first series.
    """
    events: list[SessionEvent] = []
    for series in range(first_series, first_series + series_count):
        for tilt in range(tilts):
            for record in _PER_TILT:
                if series == failed_series and tilt == tilts - 1 and record != "MovieAcquired":
                    if record == "MovieMotionCorrected":
                        failure = sample("ProcessingFailed", series, tilt, session)
                        events.append(("ProcessingFailed", failure))
                    continue
                events.append((record, sample(record, series, tilt, session)))
        ended = sample("TiltSeriesAcquisitionEnded", series, 0, session)
        ended["acquired_tilt_count"] = tilts
        events.append(("TiltSeriesAcquisitionEnded", ended))
        for version in range(1, versions + 1):
            for record in _PER_VERSION:
                value = versioned_event(record, series, version, session)
                if record == "TomogramReconstructed":
                    value["tilt_alignments"] = value["tilt_alignments"][:tilts]
                events.append((record, value))
    return copy.deepcopy(events)
