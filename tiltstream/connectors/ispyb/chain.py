"""Finding or creating the rows every result hangs from, by natural key, with an id cache.

Natural keys:

* BLSession: the visit (``cm40000-1``), which the facility creates (see
  :mod:`~tiltstream.connectors.ispyb.acquisition`);
* DataCollection: the tilt series' name within the visit (``imagePrefix``), one DataCollectionGroup
  (experiment type ``tomo``) each;
* ProcessingJob: data collection + ``recipe`` (``tiltstream-<stage>``) + ``comments`` (the reconstruction
  request, per-version stages); its AutoProcProgram by ``processingJobId``. ``AutoProcProgram.jobUuid``
  (a UUIDv5 of tilt series, stage and request) is written where the schema version has the column;
* Movie: ``dataCollectionId`` + ``movieNumber`` (acquisition order, 1-based); MotionCorrection: ``movieId``.

The cache holds ids of committed rows only.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    MotionCorrection,
    Movie,
    ProcessingJob,
    ProcessingJobParameter,
)
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.acquisition import (
    Acquisition,
    CollectionChanges,
    OrmAcquisition,
    RoutineAcquisition,
)
from tiltstream.connectors.ispyb.batch import batch_rows
from tiltstream.connectors.ispyb.errors import RecordRejectedError, SinkConfigurationError
from tiltstream.connectors.ispyb.job_uuid import JOB_UUID_NAMESPACE, job_uuid
from tiltstream.connectors.ispyb.probe import SchemaInfo
from tiltstream.connectors.ispyb.rows import Rows, earliest, latest
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.streams.events import EventMetadata

__all__ = ["JOB_UUID_NAMESPACE", "Chain", "combined", "job_uuid"]


def combined(old: CollectionChanges, new: CollectionChanges) -> CollectionChanges:
    """Two events' changes to one data collection as one: earliest start, latest end, later values."""
    return CollectionChanges(
        started=earliest(old.started, new.started),
        ended=latest(old.ended, new.ended),
        values={**old.values, **new.values},
    )


class Chain:
    """Id lookups for one database, used inside the sink's transactions.

    Parameters
    ----------
    settings
        The service account's login, the visit pattern and whether visits may be created.
    schema
        What the start-up probe found (canonical routines or ORM-built tables).
    """

    def __init__(self, settings: IspybSinkSettings) -> None:
        self.settings = settings
        self._rows: Rows | None = None
        self._acquisition: Acquisition | None = None
        self._committed: dict[tuple[Any, ...], Any] = {}
        self._pending: dict[tuple[Any, ...], Any] = {}

    def use(self, schema: SchemaInfo) -> None:
        """Write through the canonical routines or the models, as ``schema`` (the probe's finding) says."""
        self._rows = Rows(schema)
        settings = self.settings
        if schema.canonical and settings.create_visits:
            raise SinkConfigurationError(
                "TILTSTREAM_ISPYB_CREATE_VISITS is for ORM-built databases (demo, SQLite): on the canonical "
                "schema the facility creates visits and the processing role may not"
            )
        self._acquisition = (
            RoutineAcquisition(self._rows, schema)
            if schema.canonical
            else OrmAcquisition(
                self._rows,
                settings.person_login,
                settings.visit_pattern,
                create_visits=settings.create_visits,
            )
        )

    @property
    def schema(self) -> SchemaInfo | None:
        """What the probe found (``None`` until :meth:`use`)."""
        return None if self._rows is None else self._rows.schema

    @property
    def rows(self) -> Rows:
        """Checked writes for this database's schema."""
        if self._rows is None:
            raise RuntimeError("Chain.use(schema) first")
        return self._rows

    @property
    def acquisition(self) -> Acquisition:
        """Visits and data collections, the canonical routines' way or the models'."""
        if self._acquisition is None:
            raise RuntimeError("Chain.use(schema) first")
        return self._acquisition

    # -- cache ------------------------------------------------------------------------------------

    def _get(self, key: tuple[Any, ...]) -> Any:
        return self._pending.get(key, self._committed.get(key))

    def _put(self, key: tuple[Any, ...], value: Any) -> Any:
        self._pending[key] = value
        return value

    def commit(self) -> None:
        """The transaction committed: keep its ids."""
        self._committed.update(self._pending)
        self._pending.clear()

    def rollback(self) -> None:
        """The transaction rolled back: forget its ids."""
        self._pending.clear()

    def forget(self) -> None:
        """Forget everything (after a failure whose extent is unknown)."""
        self._committed.clear()
        self._pending.clear()

    def reprobe(self) -> None:
        """Look at the schema again before the next write (a DBA may have widened a column since)."""
        self._rows = None
        self._acquisition = None

    # -- rows -------------------------------------------------------------------------------------

    def session_id(self, session: Session, metadata: EventMetadata) -> int:
        """``BLSession.sessionId`` of the event's visit (raises VisitNotFoundError when ISPyB lacks it)."""
        visit = metadata.session_id
        cached = self._get(("visit", visit))
        if cached is not None:
            return int(cached)
        if re.fullmatch(self.settings.visit_pattern, visit) is None:
            raise RecordRejectedError(f"session id {visit!r} is not a visit like 'cm40000-1'")
        found = self.acquisition.session_id(session, visit, metadata.microscope)
        return int(self._put(("visit", visit), found))

    def collection(self, session: Session, metadata: EventMetadata) -> int:
        """The tilt series' ``dataCollectionId`` (with its DataCollectionGroup), created on first sight."""
        series = metadata.tilt_series_id
        cached = self._get(("dc", series))
        if cached is not None:
            return int(cached)
        session_id = self.session_id(session, metadata)
        prefix = series.removeprefix(f"{metadata.session_id}:")
        self.rows.check("DataCollection", "imagePrefix", prefix)
        dc = self.acquisition.find(session, session_id, prefix, series)
        if dc is None:
            dc = self.acquisition.create(session, session_id, prefix, series)
        return int(self._put(("dc", series), dc))

    def merge_collection(
        self, session: Session, metadata: EventMetadata, dc_id: int, changes: CollectionChanges
    ) -> int:
        """Hold what an event says about its data collection until :meth:`settle_collections`; 0 rows yet.

        The changes of one transaction are combined per data collection (earliest start, latest end, the
        later values) and written once, at its end: one read and one write per tilt series per batch.
        """
        held: dict[int, tuple[int, CollectionChanges]] = session.info.setdefault("tiltstream.collections", {})
        session_id = self.session_id(session, metadata)
        old = held.get(dc_id)
        held[dc_id] = (session_id, changes if old is None else combined(old[1], changes))
        return 0

    def settle_collections(self, session: Session) -> int:
        """Write the held data-collection changes of this transaction; the rows changed."""
        held: dict[int, tuple[int, CollectionChanges]] = session.info.pop("tiltstream.collections", {})
        return sum(self.acquisition.merge(session, sid, dc, changes) for dc, (sid, changes) in held.items())

    def program(
        self, session: Session, metadata: EventMetadata, stage: str, key: str = ""
    ) -> tuple[ProcessingJob, AutoProcProgram]:
        """The ProcessingJob and AutoProcProgram of ``stage`` (per request ``key``) for the tilt series."""
        series = metadata.tilt_series_id
        held = batch_rows(session).programs
        found = held.get((series, stage, key))
        if found is None:
            found = held[(series, stage, key)] = self._program(session, metadata, stage, key)
        return found

    def _program(
        self, session: Session, metadata: EventMetadata, stage: str, key: str
    ) -> tuple[ProcessingJob, AutoProcProgram]:
        dc = self.collection(session, metadata)
        recipe = f"tiltstream-{stage}"
        jobs = batch_rows(session).jobs(session, dc)
        pj, app = jobs.get((recipe, key), (None, None))
        if pj is None:
            pj = self.rows.insert(
                session, ProcessingJob, dataCollectionId=dc, automatic=1, displayName=stage, recipe=recipe,
                comments=key or None,
            )  # fmt: skip
        if app is None:
            job = (
                {"jobUuid": job_uuid(metadata.tilt_series_id, stage, key)}
                if self.rows.schema.has("AutoProcProgram", "jobUuid")
                else {}
            )
            app = self.rows.insert(session, AutoProcProgram, processingJobId=pj.processingJobId, **job)
        jobs[(recipe, key)] = (pj, app)
        return pj, app

    def parameter(self, session: Session, pj: ProcessingJob, key: str, value: str) -> int:
        """Set ProcessingJobParameter ``key`` of ``pj``; return 1 when it changed."""
        held = batch_rows(session).parameters(session, int(pj.processingJobId))
        row = held.get(key)
        if row is None:
            held[key] = self.rows.insert(
                session, ProcessingJobParameter, processingJobId=pj.processingJobId, parameterKey=key,
                parameterValue=value,
            )  # fmt: skip
            return 1
        return self.rows.assign(row, parameterValue=value)

    def movie(self, session: Session, dc_id: int, acquisition_order: int) -> Movie:
        """Movie number ``acquisition_order + 1`` of the collection, created empty if not seen yet."""
        number = acquisition_order + 1
        batch = batch_rows(session)
        movie = batch.movies.get((dc_id, number))
        if movie is not None:
            return movie
        cached = self._get(("movie", dc_id, number))
        if cached is not None:
            movie = session.get_one(Movie, cached)
        else:
            movie = session.scalar(
                sa.select(Movie).where(Movie.dataCollectionId == dc_id, Movie.movieNumber == number)
            )
        if movie is None:
            movie = self.rows.insert(session, Movie, dataCollectionId=dc_id, movieNumber=number)
        self._put(("movie", dc_id, number), movie.movieId)
        batch.movies[(dc_id, number)] = movie
        return movie

    def motion_correction(
        self, session: Session, dc_id: int, movie: Movie, app: AutoProcProgram
    ) -> MotionCorrection:
        """The movie's MotionCorrection row, created empty (under ``app``) if not seen yet."""
        batch = batch_rows(session)
        row = batch.motions.get(int(movie.movieId))
        if row is not None:
            return row
        cached = self._get(("mc", movie.movieId))
        if cached is not None:
            row = session.get_one(MotionCorrection, cached)
        else:
            row = session.scalar(sa.select(MotionCorrection).where(MotionCorrection.movieId == movie.movieId))
        if row is None:
            row = self.rows.insert(
                session, MotionCorrection, movieId=movie.movieId, dataCollectionId=dc_id,
                autoProcProgramId=app.autoProcProgramId, imageNumber=movie.movieNumber,
            )  # fmt: skip
        self._put(("mc", movie.movieId), row.motionCorrectionId)
        batch.motions[int(movie.movieId)] = row
        return row
