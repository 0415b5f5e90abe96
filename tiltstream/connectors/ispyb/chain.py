"""Finding or creating the rows every result hangs from, by natural key, with an id cache.

Natural keys:

* Person: ``login`` (the sink's service account); Proposal: ``proposalCode`` + ``proposalNumber`` and
  BLSession: ``proposalId`` + ``visit_number``, both parsed from the visit (``cm40000-1``);
* DataCollection: ``SESSIONID`` + ``imagePrefix`` (the tilt series' name within the visit), one
  DataCollectionGroup (experiment type ``tomo``) each;
* ProcessingJob + AutoProcProgram: ``AutoProcProgram.jobUuid``, a UUIDv5 of tilt series, stage and (for
  per-version stages) the reconstruction request;
* Movie: ``dataCollectionId`` + ``movieNumber`` (acquisition order, 1-based); MotionCorrection: ``movieId``.

Rows with unique indexes in ISPyB (Person, Proposal, BLSession) may be created by two sink instances at
once: the loser of that race re-reads the winner's row. The cache holds ids of committed rows only.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    BLSession,
    DataCollection,
    DataCollectionGroup,
    MotionCorrection,
    Movie,
    Person,
    ProcessingJob,
    ProcessingJobParameter,
    Proposal,
)
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.errors import RecordRejectedError
from tiltstream.connectors.ispyb.rows import assign

__all__ = ["JOB_UUID_NAMESPACE", "Chain", "job_uuid"]

#: Namespace of the deterministic ``AutoProcProgram.jobUuid`` values (fixed forever).
JOB_UUID_NAMESPACE = uuid.UUID("0b5f3a52-7d0c-5b1e-9a43-69737079622e")


def job_uuid(tilt_series_id: str, stage: str, key: str = "") -> bytes:
    """The 16-byte ``jobUuid`` of ``stage`` for a tilt series (``key``: the request, per-version stages)."""
    return uuid.uuid5(JOB_UUID_NAMESPACE, f"{tilt_series_id}\x1f{stage}\x1f{key}").bytes


class Chain:
    """Id lookups for one database, used inside the sink's transactions.

    Parameters
    ----------
    person_login
        ``Person.login`` of the account that owns proposals the sink has to create.
    visit_pattern
        Regular expression with groups ``code``, ``number`` and ``visit`` matching a whole session id.
    """

    def __init__(self, person_login: str, visit_pattern: str) -> None:
        self.person_login = person_login
        self.visit = re.compile(visit_pattern)
        self._committed: dict[tuple[Any, ...], Any] = {}
        self._pending: dict[tuple[Any, ...], Any] = {}

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

    # -- rows -------------------------------------------------------------------------------------

    def _unique(self, session: Session, row: Any, again: sa.Select[Any]) -> Any:
        """Insert ``row``; if a concurrent writer inserted the same unique key first, return theirs."""
        if session.get_bind().dialect.name == "sqlite":  # one writer: no race, and no SAVEPOINT needed
            session.add(row)
            session.flush()
            return row
        try:
            with session.begin_nested():
                session.add(row)
        except sa.exc.IntegrityError:
            found = session.scalar(again)
            if found is None:
                raise
            return found
        return row

    def session_id(self, session: Session, metadata: dict[str, Any]) -> int:
        """``BLSession.sessionId`` of the event's visit, creating Person, Proposal and BLSession if needed."""
        visit = str(metadata["session_id"])
        cached = self._get(("visit", visit))
        if cached is not None:
            return int(cached)
        match = self.visit.fullmatch(visit)
        if match is None:
            raise RecordRejectedError(f"session id {visit!r} is not a visit like 'cm40000-1'")
        code, number, visit_number = match["code"], match["number"], int(match["visit"])
        query = sa.select(Person).where(Person.login == self.person_login)
        person = session.scalar(query) or self._unique(
            session, Person(login=self.person_login, familyName="tiltstream"), query
        )
        query = sa.select(Proposal).where(Proposal.proposalCode == code, Proposal.proposalNumber == number)
        proposal = session.scalar(query)
        if proposal is None:
            proposal = Proposal(personId=person.personId, proposalCode=code, proposalNumber=number)
            assign(proposal, title=f"{code}{number}")
            proposal = self._unique(session, proposal, query)
        query = sa.select(BLSession).where(
            BLSession.proposalId == proposal.proposalId, BLSession.visit_number == visit_number
        )
        blsession = session.scalar(query)
        if blsession is None:
            blsession = BLSession(proposalId=proposal.proposalId, visit_number=visit_number)
            assign(blsession, beamLineName=str(metadata["microscope"]))
            blsession = self._unique(session, blsession, query)
        return int(self._put(("visit", visit), blsession.sessionId))

    def collection(self, session: Session, metadata: dict[str, Any]) -> DataCollection:
        """The tilt series' DataCollection (and its DataCollectionGroup), created on first sight."""
        series = str(metadata["tilt_series_id"])
        cached = self._get(("dc", series))
        if cached is not None:
            return session.get_one(DataCollection, cached)
        session_id = self.session_id(session, metadata)
        prefix = series.removeprefix(f"{metadata['session_id']}:")
        dc = session.scalar(
            sa.select(DataCollection).where(
                DataCollection.SESSIONID == session_id,  # noqa: SIM300
                DataCollection.imagePrefix == prefix,
            )
        )
        if dc is None:
            group = DataCollectionGroup(sessionId=session_id, experimentType="tomo")
            session.add(group)
            session.flush()
            dc = DataCollection(dataCollectionGroupId=group.dataCollectionGroupId, SESSIONID=session_id)
            assign(dc, imagePrefix=prefix, experimenttype="tomo")
            session.add(dc)
            session.flush()
        self._put(("dc", series), dc.dataCollectionId)
        return dc

    def program(
        self, session: Session, metadata: dict[str, Any], stage: str, key: str = ""
    ) -> tuple[ProcessingJob, AutoProcProgram]:
        """The ProcessingJob and AutoProcProgram of ``stage`` (per request ``key``) for the tilt series."""
        job = job_uuid(str(metadata["tilt_series_id"]), stage, key)
        cached = self._get(("app", job))
        if cached is not None:
            return session.get_one(ProcessingJob, cached[0]), session.get_one(AutoProcProgram, cached[1])
        app = session.scalar(sa.select(AutoProcProgram).where(AutoProcProgram.jobUuid == job))
        if app is None:
            dc = self.collection(session, metadata)
            pj = ProcessingJob(dataCollectionId=dc.dataCollectionId, automatic=1)
            assign(pj, displayName=stage, recipe=f"tiltstream-{stage}", comments=key or None)
            session.add(pj)
            session.flush()
            app = AutoProcProgram(processingJobId=pj.processingJobId, jobUuid=job)
            session.add(app)
            session.flush()
        else:
            pj = session.get_one(ProcessingJob, app.processingJobId)
        self._put(("app", job), (pj.processingJobId, app.autoProcProgramId))
        return pj, app

    def parameter(self, session: Session, pj: ProcessingJob, key: str, value: str) -> int:
        """Set ProcessingJobParameter ``key`` of ``pj``; return 1 when it changed."""
        row = session.scalar(
            sa.select(ProcessingJobParameter).where(
                ProcessingJobParameter.processingJobId == pj.processingJobId,
                ProcessingJobParameter.parameterKey == key,
            )
        )
        if row is None:
            row = ProcessingJobParameter(processingJobId=pj.processingJobId, parameterKey=key)
            session.add(row)
        return assign(row, parameterValue=value)

    def movie(self, session: Session, dc: DataCollection, acquisition_order: int) -> Movie:
        """Movie number ``acquisition_order + 1`` of the collection, created empty if not seen yet."""
        number = acquisition_order + 1
        cached = self._get(("movie", dc.dataCollectionId, number))
        if cached is not None:
            return session.get_one(Movie, cached)
        movie = session.scalar(
            sa.select(Movie).where(Movie.dataCollectionId == dc.dataCollectionId, Movie.movieNumber == number)
        )
        if movie is None:
            movie = Movie(dataCollectionId=dc.dataCollectionId)
            assign(movie, movieNumber=number)
            session.add(movie)
            session.flush()
        self._put(("movie", dc.dataCollectionId, number), movie.movieId)
        return movie

    def motion_correction(
        self, session: Session, dc: DataCollection, movie: Movie, app: AutoProcProgram
    ) -> MotionCorrection:
        """The movie's MotionCorrection row, created empty (under ``app``) if not seen yet."""
        cached = self._get(("mc", movie.movieId))
        if cached is not None:
            return session.get_one(MotionCorrection, cached)
        row = session.scalar(sa.select(MotionCorrection).where(MotionCorrection.movieId == movie.movieId))
        if row is None:
            row = MotionCorrection(
                movieId=movie.movieId,
                dataCollectionId=dc.dataCollectionId,
                autoProcProgramId=app.autoProcProgramId,
                imageNumber=movie.movieNumber,
            )
            session.add(row)
            session.flush()
        self._put(("mc", movie.movieId), row.motionCorrectionId)
        return row
