"""A facility's few sessions written to ISPyB by the real sink, and what the statistics must say of them.

Two microscopes: ``m02`` has visit ``cm40000-1`` (the fixture's, commissioning) on 2026-11-25 with 2 tilt
series of 3 tilts (series 2's last movie failed motion correction; 2 reconstruction versions each); ``m03``
has visit ``bi40001-1`` (a user visit, registered here as the facility would) a day later with 3 series of
4 tilts, one reconstruction each, the third never reconstructed nor denoised. Each series' first tomogram
comes a known number of seconds after its last tilt. The expected figures are computed from the events,
not written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import SessionType
from ispyb_fixtures import IspybDatabase, register_visit

from tiltstream.connectors.ispyb.samples import SessionEvent, session_events
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine

#: Seconds from a series' last tilt to its first tomogram, per (visit, series).
WAITS: dict[tuple[str, int], float] = {
    ("cm40000-1", 1): 95.0,
    ("cm40000-1", 2): 130.0,
    ("bi40001-1", 1): 60.0,
    ("bi40001-1", 2): 240.0,
    ("bi40001-1", 3): 75.0,  # never reconstructed: no wait counted
}


def _shift(value: Any, delta: timedelta) -> Any:
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, dict):
        return {k: _shift(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    return value


def _series(value: dict[str, Any]) -> int:
    return int(value["metadata"]["tilt_series_id"].rsplit("_", 1)[1])


def _timed(events: list[SessionEvent], visit: str) -> list[SessionEvent]:
    """Reconstruction events moved to ``WAITS`` after the series' last tilt (version v: v-1 min later)."""
    last: dict[int, datetime] = {}
    for record, value in events:
        if record == "MovieAcquired":
            last[_series(value)] = max(last.get(_series(value), value["acquired_at"]), value["acquired_at"])
    timed: list[SessionEvent] = []
    for record, value in events:
        if record in ("ReconstructionRequested", "TomogramReconstructed", "TomogramDenoised"):
            series, version = _series(value), int(value["version"])
            done = last[series] + timedelta(seconds=WAITS[(visit, series)] + 60 * (version - 1))
            offset = {"ReconstructionRequested": -30, "TomogramReconstructed": 0, "TomogramDenoised": 20}
            value["metadata"]["occurred_at"] = done + timedelta(seconds=offset[record])
        timed.append((record, value))
    return timed


def facility_events() -> dict[str, list[SessionEvent]]:
    """The events of both visits, by visit."""
    first = _timed(session_events(2, 3, versions=2, failed_series=2), "cm40000-1")
    second = session_events(3, 4, versions=1, session="bi40001-1")
    second = [
        (r, v)
        for r, v in second
        if not (
            _series(v) == 3 and r in ("ReconstructionRequested", "TomogramReconstructed", "TomogramDenoised")
        )
    ]
    second = _timed([(r, _shift(v, timedelta(days=1))) for r, v in second], "bi40001-1")
    return {"cm40000-1": first, "bi40001-1": second}


def _series_with(events: list[SessionEvent], record: str) -> set[str]:
    return {v["metadata"]["tilt_series_id"] for r, v in events if r == record}


def expected(events: list[SessionEvent]) -> dict[str, Any]:
    """What the statistics of ``events`` (one visit) must be, counted from the events themselves."""
    series = {v["metadata"]["tilt_series_id"] for _, v in events}
    last: dict[str, datetime] = {}
    first_tomogram: dict[str, datetime] = {}
    failures: dict[str, set[str]] = {}
    for record, value in events:
        key = value["metadata"]["tilt_series_id"]
        if record == "MovieAcquired":
            last[key] = max(last.get(key, value["acquired_at"]), value["acquired_at"])
        if record == "TomogramReconstructed":
            when = value["metadata"]["occurred_at"]
            first_tomogram[key] = min(first_tomogram.get(key, when), when)
        if record == "ProcessingFailed":
            failures.setdefault(value["stage"], set()).add(key)
    waits = [(first_tomogram[k] - last[k]).total_seconds() for k in first_tomogram]
    return {
        "tilt_series": len(series),
        "movies": sum(r == "MovieAcquired" for r, _ in events),
        "tomograms": len(
            {v["metadata"]["tilt_series_id"] for r, v in events if r == "TomogramReconstructed"}
        ),
        "denoised": len({v["metadata"]["tilt_series_id"] for r, v in events if r == "TomogramDenoised"}),
        "failures": {stage: len(keys) for stage, keys in sorted(failures.items())},
        "median_seconds_to_tomogram": median(waits) if waits else None,
    }


@dataclass(frozen=True)
class Facility:
    """The test's ISPyB after the sink wrote both visits, and the events it was given."""

    database: IspybDatabase
    events: dict[str, list[SessionEvent]]


def write_facility(database: IspybDatabase) -> Facility:
    """Register ``bi40001-1`` on ``m03`` (the facility's part), then let the sink write every event."""
    admin = create_engine(database.admin_url)
    try:
        session_id = register_visit(admin, "bi40001-1", microscope="m03")
        if database.kind == "mariadb":  # the canonical schema has the facility's session types
            with admin.begin() as db:
                db.execute(sa.insert(SessionType.__table__).values(sessionId=session_id, typeName="user"))
    finally:
        admin.dispose()
    events = facility_events()
    engine = create_engine(database.url)
    try:
        sink = IspybSink(IspybSinkSettings(database_url=database.url), engine=engine)
        for visit_events in events.values():
            sink.write(visit_events)
    finally:
        engine.dispose()
    return Facility(database, events)
