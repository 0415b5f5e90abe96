"""Reading ISPyB through the ``ispyb`` package's models, the same the sink writes.

Every query is scoped to one BLSession (found from the visit's proposal code, number and visit number),
so a series name or movie number from a request can only reach rows of the session it was authorised for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgram,
    BLSession,
    DataCollection,
    MotionCorrection,
    Movie,
    ProcessedTomogram,
    ProcessingJob,
    Proposal,
    TiltImageAlignment,
    Tomogram,
)
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.writer import tomogram_version
from tiltstream.web.access import Visit

__all__ = [
    "CollectionRow",
    "FailedProgram",
    "SeriesRows",
    "TiltRow",
    "blsession",
    "collection",
    "collections",
    "failed_programs",
    "series_rows",
    "tilt_row",
]


@dataclass(frozen=True)
class CollectionRow:
    """A tilt series as ISPyB has it, with counts of its per-tilt results."""

    collection: DataCollection
    movies: int
    corrected: int
    ctf: int
    last_movie_at: datetime | None
    tomogram: Tomogram | None
    denoised: bool


@dataclass(frozen=True)
class TiltRow:
    """One movie with its motion correction and CTF rows, and its alignment in the current tomogram."""

    movie: Movie
    motion: MotionCorrection | None
    ctf: CTF | None
    alignment: TiltImageAlignment | None


@dataclass(frozen=True)
class SeriesRows:
    """Everything ISPyB holds about one tilt series."""

    row: CollectionRow
    tilts: list[TiltRow]
    version: int | None
    processed: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class FailedProgram:
    """A stage's program that ended in failure."""

    series: str
    stage: str
    request: str | None
    message: str
    ended_at: datetime | None


def blsession(db: Session, visit: Visit) -> BLSession | None:
    """The BLSession of ``visit``, or ``None`` when ISPyB has not heard of it."""
    return db.scalar(
        sa.select(BLSession)
        .join(Proposal, Proposal.proposalId == BLSession.proposalId)
        .where(
            Proposal.proposalCode == visit.code,
            Proposal.proposalNumber == visit.number,
            BLSession.visit_number == visit.visit_number,
        )
    )


def _rows(db: Session, session_id: int, prefix: str | None = None) -> list[CollectionRow]:
    query = sa.select(DataCollection).where(DataCollection.SESSIONID == session_id)  # noqa: SIM300
    if prefix is not None:
        query = query.where(DataCollection.imagePrefix == prefix)
    found = list(db.scalars(query.order_by(DataCollection.dataCollectionId)))
    if not found:
        return []
    ids = [dc.dataCollectionId for dc in found]
    movies = {
        dc: (count, last)
        for dc, count, last in db.execute(
            sa.select(Movie.dataCollectionId, sa.func.count(), sa.func.max(Movie.createdTimeStamp))
            .where(Movie.dataCollectionId.in_(ids))
            .group_by(Movie.dataCollectionId)
        )
    }
    corrected: dict[int, int] = dict(
        db.execute(
            sa.select(MotionCorrection.dataCollectionId, sa.func.count())
            .where(
                MotionCorrection.dataCollectionId.in_(ids), MotionCorrection.micrographFullPath.is_not(None)
            )
            .group_by(MotionCorrection.dataCollectionId)
        ).all()
    )
    ctf: dict[int, int] = dict(
        db.execute(
            sa.select(MotionCorrection.dataCollectionId, sa.func.count())
            .join(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
            .where(MotionCorrection.dataCollectionId.in_(ids), CTF.estimatedDefocus.is_not(None))
            .group_by(MotionCorrection.dataCollectionId)
        ).all()
    )
    tomograms = {
        t.dataCollectionId: t
        for t in db.scalars(sa.select(Tomogram).where(Tomogram.dataCollectionId.in_(ids)))
    }
    denoised = set(
        db.scalars(
            sa.select(Tomogram.dataCollectionId)
            .join(ProcessedTomogram, ProcessedTomogram.tomogramId == Tomogram.tomogramId)
            .where(
                Tomogram.dataCollectionId.in_(ids),
                ProcessedTomogram.processingType == "Denoised",
                ProcessedTomogram.filePath.is_not(None),
            )
        )
    )
    return [
        CollectionRow(
            collection=dc,
            movies=movies.get(dc.dataCollectionId, (0, None))[0],
            corrected=corrected.get(dc.dataCollectionId, 0),
            ctf=ctf.get(dc.dataCollectionId, 0),
            last_movie_at=movies.get(dc.dataCollectionId, (0, None))[1],
            tomogram=tomograms.get(dc.dataCollectionId),
            denoised=dc.dataCollectionId in denoised,
        )
        for dc in found
    ]


def collections(db: Session, session_id: int) -> list[CollectionRow]:
    """Every tilt series of the session, in the order ISPyB first saw them."""
    return _rows(db, session_id)


def collection(db: Session, session_id: int, name: str) -> CollectionRow | None:
    """The tilt series ``name`` of the session, or ``None``."""
    rows = _rows(db, session_id, name)
    return rows[0] if rows else None


def series_rows(db: Session, session_id: int, name: str) -> SeriesRows | None:
    """The series ``name`` with every tilt's rows, the current tomogram and its processed files."""
    row = collection(db, session_id, name)
    if row is None:
        return None
    dc_id = row.collection.dataCollectionId
    tomogram_id = row.tomogram.tomogramId if row.tomogram is not None else -1
    query = (
        sa.select(Movie, MotionCorrection, CTF, TiltImageAlignment)
        .outerjoin(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
        .outerjoin(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
        .outerjoin(
            TiltImageAlignment,
            sa.and_(
                TiltImageAlignment.movieId == Movie.movieId,
                TiltImageAlignment.tomogramId == tomogram_id,
                TiltImageAlignment.refinedTiltAngle.is_not(None),  # emptied: a superseded version's tilt
            ),
        )
        .where(Movie.dataCollectionId == dc_id)
        .order_by(Movie.movieNumber)
    )
    tilts = [TiltRow(movie, motion, ctf, alignment) for movie, motion, ctf, alignment in db.execute(query)]
    processed = (
        {
            str(kind): path
            for kind, path in db.execute(
                sa.select(ProcessedTomogram.processingType, ProcessedTomogram.filePath).where(
                    ProcessedTomogram.tomogramId == tomogram_id
                )
            )
        }
        if row.tomogram is not None
        else {}
    )
    return SeriesRows(row=row, tilts=tilts, version=tomogram_version(db, row.tomogram), processed=processed)


def tilt_row(db: Session, session_id: int, name: str, number: int) -> TiltRow | None:
    """Movie ``number`` (acquisition order from 1) of series ``name`` with its result rows."""
    found = db.execute(
        sa.select(Movie, MotionCorrection, CTF)
        .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
        .outerjoin(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
        .outerjoin(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
        .where(
            DataCollection.SESSIONID == session_id,  # noqa: SIM300
            DataCollection.imagePrefix == name,
            Movie.movieNumber == number,
        )
    ).first()
    if found is None:
        return None
    movie, motion, ctf = found
    return TiltRow(movie, motion, ctf, None)


def failed_programs(db: Session, session_id: int) -> list[FailedProgram]:
    """Every stage program of the session that ended in failure (``processingStatus`` 0), newest first."""
    query = (
        sa.select(
            DataCollection.imagePrefix, ProcessingJob.displayName, ProcessingJob.comments, AutoProcProgram
        )
        .join(ProcessingJob, ProcessingJob.dataCollectionId == DataCollection.dataCollectionId)
        .join(AutoProcProgram, AutoProcProgram.processingJobId == ProcessingJob.processingJobId)
        .where(DataCollection.SESSIONID == session_id, AutoProcProgram.processingStatus == 0)  # noqa: SIM300
        .order_by(AutoProcProgram.processingEndTime.desc(), AutoProcProgram.autoProcProgramId.desc())
    )
    return [
        FailedProgram(
            series=str(prefix),
            stage=str(stage),
            request=comments or None,
            message=str(app.processingMessage or ""),
            ended_at=app.processingEndTime,
        )
        for prefix, stage, comments, app in db.execute(query)
    ]
