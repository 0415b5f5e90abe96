"""One fact row per tilt series, read from ISPyB with SQLAlchemy Core (read-only account is enough).

Works on Diamond's canonical schema (MariaDB, read as ``ispyb_ro_nopii``) and on the ORM-built tables
(SQLite, PostgreSQL). A tilt series is a DataCollection; its microscope is ``BLSession.beamLineName``; its
session type is the facility's ``SessionType.typeName`` where that table is there and has a row, else the
proposal code (``cm`` commissioning, ``bi`` user, …). A stage's run is an AutoProcProgram under a
ProcessingJob whose ``displayName`` is the stage (``motioncorr``, ``ctf``, ``reconstruct``, ``denoise``);
``processingStatus`` 0 is a failure, 1 a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    BLSession,
    DataCollection,
    DataCollectionGroup,
    Movie,
    ProcessedTomogram,
    ProcessingJob,
    Proposal,
    SessionType,
    Tomogram,
)
from sqlalchemy.engine import Connection

__all__ = ["SeriesFacts", "series_facts"]

_DC = DataCollection.__table__
_DCG = DataCollectionGroup.__table__
_SESSION = BLSession.__table__
_PROPOSAL = Proposal.__table__
_MOVIE = Movie.__table__
_TOMOGRAM = Tomogram.__table__
_PROCESSED = ProcessedTomogram.__table__
_JOB = ProcessingJob.__table__
_PROGRAM = AutoProcProgram.__table__
_TYPE = SessionType.__table__


@dataclass(frozen=True)
class SeriesFacts:
    """What ISPyB says about one tilt series.

    Attributes
    ----------
    microscope
        ``BLSession.beamLineName`` (``"unknown"`` when empty).
    session
        The visit, ``cm40000-1``.
    session_type
        ``SessionType.typeName``, else the proposal code.
    day
        The day the series' collection started (``None`` when ISPyB has no start time).
    movies
        Movie rows.
    tomogram
        A reconstructed volume is recorded (``Tomogram.volumeFile``).
    denoised
        A denoised volume is recorded (``ProcessedTomogram`` of type ``Denoised``).
    failed_stages
        Stages with a failed program, sorted.
    last_tilt_at
        The newest ``Movie.createdTimeStamp`` (the last tilt's acquisition).
    first_tomogram_at
        The earliest end of a successful ``reconstruct`` program.
    """

    microscope: str
    session: str
    session_type: str
    day: date | None
    movies: int
    tomogram: bool
    denoised: bool
    failed_stages: tuple[str, ...]
    last_tilt_at: datetime | None
    first_tomogram_at: datetime | None


@dataclass(frozen=True)
class _Filter:
    """Which tilt series: from ``since`` on, on ``microscope``, in ``session_id`` (each optional)."""

    since: date | None
    microscope: str | None
    session_id: int | None

    def select(self, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """``columns`` of the chosen data collections joined to their group, session and proposal."""
        started = sa.func.coalesce(_DC.c.startTime, _DCG.c.startTime)
        query = (
            sa.select(*columns)
            .select_from(_DC)
            .join(_DCG, _DCG.c.dataCollectionGroupId == _DC.c.dataCollectionGroupId)
            .join(_SESSION, _SESSION.c.sessionId == _DCG.c.sessionId)
            .join(_PROPOSAL, _PROPOSAL.c.proposalId == _SESSION.c.proposalId)
        )
        if self.since is not None:
            query = query.where(started >= datetime.combine(self.since, datetime.min.time()))
        if self.microscope is not None:
            query = query.where(_SESSION.c.beamLineName == self.microscope)
        if self.session_id is not None:
            query = query.where(_SESSION.c.sessionId == self.session_id)
        return query


def _collections(connection: Connection, chosen: _Filter) -> list[sa.Row[Any]]:
    query = chosen.select(
        _DC.c.dataCollectionId,
        _SESSION.c.sessionId,
        _SESSION.c.beamLineName,
        _SESSION.c.visit_number,
        _PROPOSAL.c.proposalCode,
        _PROPOSAL.c.proposalNumber,
        sa.func.coalesce(_DC.c.startTime, _DCG.c.startTime).label("started"),
    )
    return list(connection.execute(query.order_by(_DC.c.dataCollectionId)))


def _session_types(connection: Connection, chosen: _Filter) -> dict[int, str]:
    """``SessionType.typeName`` per session, where the table is there (the ORM-built schema lacks it)."""
    if "SessionType" not in sa.inspect(connection).get_table_names():
        return {}
    sessions = chosen.select(_SESSION.c.sessionId)
    query = sa.select(_TYPE.c.sessionId, sa.func.min(_TYPE.c.typeName)).where(_TYPE.c.sessionId.in_(sessions))
    return {int(s): str(t) for s, t in connection.execute(query.group_by(_TYPE.c.sessionId))}


@dataclass(frozen=True)
class _Found:
    """Per data collection: (movies, last tilt), a volume, a denoised one, failed stages, first tomogram."""

    movies: dict[int, tuple[int, datetime | None]]
    volumes: set[int]
    denoised: set[int]
    failed: dict[int, tuple[str, ...]]
    reconstructed: dict[int, datetime | None]


def _per_collection(connection: Connection, chosen: _Filter) -> _Found:
    """Movies and last tilt, tomogram, denoised, failed stages and first tomogram, by data collection."""
    ids = chosen.select(_DC.c.dataCollectionId)  # a subquery: no list of ids travels
    movies = connection.execute(
        sa.select(_MOVIE.c.dataCollectionId, sa.func.count(), sa.func.max(_MOVIE.c.createdTimeStamp))
        .where(_MOVIE.c.dataCollectionId.in_(ids))
        .group_by(_MOVIE.c.dataCollectionId)
    ).all()
    volumes = connection.execute(
        sa.select(_TOMOGRAM.c.dataCollectionId)
        .where(_TOMOGRAM.c.dataCollectionId.in_(ids), _TOMOGRAM.c.volumeFile.is_not(None))
        .distinct()
    ).scalars()
    denoised = connection.execute(
        sa.select(_TOMOGRAM.c.dataCollectionId)
        .join(_PROCESSED, _PROCESSED.c.tomogramId == _TOMOGRAM.c.tomogramId)
        .where(
            _TOMOGRAM.c.dataCollectionId.in_(ids),
            _PROCESSED.c.processingType == "Denoised",
            _PROCESSED.c.filePath.is_not(None),
        )
        .distinct()
    ).scalars()
    failed = connection.execute(
        sa.select(_JOB.c.dataCollectionId, _JOB.c.displayName)
        .join(_PROGRAM, _PROGRAM.c.processingJobId == _JOB.c.processingJobId)
        .where(_JOB.c.dataCollectionId.in_(ids), _PROGRAM.c.processingStatus == 0)
    ).all()
    reconstructed = connection.execute(
        sa.select(_JOB.c.dataCollectionId, sa.func.min(_PROGRAM.c.processingEndTime))
        .join(_PROGRAM, _PROGRAM.c.processingJobId == _JOB.c.processingJobId)
        .where(
            _JOB.c.dataCollectionId.in_(ids),
            _JOB.c.displayName == "reconstruct",
            _PROGRAM.c.processingStatus == 1,
        )
        .group_by(_JOB.c.dataCollectionId)
    ).all()
    stages: dict[int, set[str]] = {}
    for dc, stage in failed:
        stages.setdefault(int(dc), set()).add(str(stage))
    return _Found(
        movies={int(dc): (int(count), last) for dc, count, last in movies},
        volumes={int(dc) for dc in volumes},
        denoised={int(dc) for dc in denoised},
        failed={dc: tuple(sorted(names)) for dc, names in stages.items()},
        reconstructed={int(dc): first for dc, first in reconstructed},
    )


def series_facts(
    connection: Connection,
    *,
    since: date | None = None,
    microscope: str | None = None,
    session_id: int | None = None,
) -> list[SeriesFacts]:
    """One :class:`SeriesFacts` per tilt series collected from ``since`` on, on ``microscope`` (or all).

    Parameters
    ----------
    connection
        ISPyB, as any account that may read the tables above (``ispyb_ro_nopii`` is enough).
    since
        Only series whose collection started on or after this day.
    microscope
        Only this ``BLSession.beamLineName``.
    session_id
        Only this ``BLSession.sessionId``.
    """
    chosen = _Filter(since, microscope, session_id)
    rows = _collections(connection, chosen)
    if not rows:
        return []
    types = _session_types(connection, chosen)
    found = _per_collection(connection, chosen)
    facts = []
    for row in rows:
        dc = int(row.dataCollectionId)
        count, last = found.movies.get(dc, (0, None))
        started = row.started
        facts.append(
            SeriesFacts(
                microscope=str(row.beamLineName or "unknown"),
                session=f"{row.proposalCode}{row.proposalNumber}-{row.visit_number}",
                session_type=types.get(int(row.sessionId), str(row.proposalCode or "unknown")),
                day=started.date() if isinstance(started, datetime) else None,
                movies=int(count),
                tomogram=dc in found.volumes,
                denoised=dc in found.denoised,
                failed_stages=found.failed.get(dc, ()),
                last_tilt_at=last,
                first_tomogram_at=found.reconstructed.get(dc),
            )
        )
    return facts
