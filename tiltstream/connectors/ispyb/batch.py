"""The per-tilt rows of one batch, loaded with one SELECT per table and the missing ones created in bulk.

A batch's per-tilt events (movie acquired, motion-corrected, CTF-estimated) would otherwise each look up
(and often insert) their Movie, MotionCorrection and CTF rows one round trip at a time. :func:`prepare`
does it for the whole batch before any event is applied: the data collections and motion-correction
programs first (cached by the :class:`~tiltstream.connectors.ispyb.chain.Chain`), then per table one
``SELECT ... IN (...)``, one multi-row ``INSERT`` of the rows no event has created yet (exactly the rows
that applying the events one by one would create, empty, before filling them in) and one ``SELECT`` of
those. The events then find their rows in :class:`BatchRows` and only set values, flushed once per batch.
Tilt alignments are loaded once per tomogram per batch and the new ones inserted at that flush.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgram,
    MotionCorrection,
    Movie,
    ProcessedTomogram,
    ProcessingJob,
    ProcessingJobParameter,
    TiltImageAlignment,
    Tomogram,
)
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.job_uuid import job_uuid
from tiltstream.streams.events import (
    CtfEstimated,
    MovieAcquired,
    MovieMotionCorrected,
    ProcessingFailed,
    ReconstructionRequested,
    TomogramDenoised,
    TomogramReconstructed,
)

if TYPE_CHECKING:
    from tiltstream.connectors.ispyb.chain import Chain
    from tiltstream.connectors.ispyb.records import SinkEvent

__all__ = ["BatchRows", "batch_rows", "prepare"]

_PER_TILT = (MovieAcquired, MovieMotionCorrected, CtfEstimated)


class BatchRows:
    """Rows loaded for the current transaction, by natural key."""

    def __init__(self) -> None:
        self.movies: dict[tuple[int, int], Movie] = {}  # (dataCollectionId, movieNumber)
        self.motions: dict[int, MotionCorrection] = {}  # movieId
        self.ctfs: dict[int, CTF] = {}  # motionCorrectionId
        self.alignments: dict[int, dict[int, TiltImageAlignment]] = {}  # tomogramId -> movieId
        # (tilt series, stage, request) -> its job and program: held here, as the session holds clean rows
        # only weakly and would read them again
        self.programs: dict[tuple[str, str, str], tuple[ProcessingJob, AutoProcProgram]] = {}
        self._parameters: dict[int, dict[str, ProcessingJobParameter]] = {}  # processingJobId -> key
        self.tomograms: dict[int, Tomogram | None] = {}  # dataCollectionId -> its Tomogram (None: none yet)
        self.processed: dict[tuple[int, str], ProcessedTomogram] = {}  # (tomogramId, processingType)
        self.processed_loaded: set[int] = set()  # tomogramIds whose ProcessedTomogram rows are loaded
        self._jobs: dict[int, dict[tuple[str, str], tuple[ProcessingJob, AutoProcProgram | None]]] = {}

    def jobs(
        self, session: Session, dc_id: int
    ) -> dict[tuple[str, str], tuple[ProcessingJob, AutoProcProgram | None]]:
        """The collection's jobs by (recipe, comments) with their first programs (loaded once per batch)."""
        if dc_id not in self._jobs:
            self.load_jobs(session, [dc_id])
        return self._jobs[dc_id]

    def load_jobs(self, session: Session, dc_ids: Iterable[int]) -> None:
        """Load the jobs and first programs of the collections ``dc_ids``: one SELECT per table."""
        wanted = sorted(set(dc_ids))
        jobs = session.scalars(
            sa.select(ProcessingJob)
            .where(ProcessingJob.dataCollectionId.in_(wanted))
            .order_by(ProcessingJob.processingJobId)
        ).all()
        programs: dict[int, AutoProcProgram] = {}
        if jobs:
            rows = session.scalars(
                sa.select(AutoProcProgram)
                .where(AutoProcProgram.processingJobId.in_([j.processingJobId for j in jobs]))
                .order_by(AutoProcProgram.autoProcProgramId)
            )
            for row in rows:
                programs.setdefault(int(row.processingJobId), row)
        for dc in wanted:
            self._jobs[dc] = {}
        for job in jobs:
            key = (str(job.recipe), str(job.comments or ""))
            self._jobs[int(job.dataCollectionId)].setdefault(
                key, (job, programs.get(int(job.processingJobId)))
            )

    def tomogram(self, session: Session, dc_id: int) -> Tomogram | None:
        """The collection's Tomogram (loaded once per batch)."""
        if dc_id not in self.tomograms:
            self.load_tomograms(session, [dc_id])
        return self.tomograms[dc_id]

    def load_tomograms(self, session: Session, dc_ids: Iterable[int]) -> None:
        """Load the Tomogram rows of the collections ``dc_ids``, and their ProcessedTomogram rows."""
        wanted = sorted(set(dc_ids) - set(self.tomograms))
        if not wanted:
            return
        for dc in wanted:
            self.tomograms[dc] = None
        rows = session.scalars(
            sa.select(Tomogram).where(Tomogram.dataCollectionId.in_(wanted)).order_by(Tomogram.tomogramId)
        )
        for row in rows:
            self.tomograms[int(row.dataCollectionId)] = self.tomograms[int(row.dataCollectionId)] or row
        found = [int(t.tomogramId) for dc in wanted if (t := self.tomograms[dc]) is not None]
        self._load_processed(session, found)

    def processed_tomogram(self, session: Session, tomogram_id: int, kind: str) -> ProcessedTomogram | None:
        """The tomogram's ProcessedTomogram of ``kind`` (loaded once per batch)."""
        self._load_processed(session, [tomogram_id])
        return self.processed.get((tomogram_id, kind))

    def _load_processed(self, session: Session, tomogram_ids: list[int]) -> None:
        wanted = sorted(set(tomogram_ids) - self.processed_loaded)
        if not wanted:
            return
        self.processed_loaded.update(wanted)
        rows = session.scalars(
            sa.select(ProcessedTomogram)
            .where(ProcessedTomogram.tomogramId.in_(wanted))
            .order_by(ProcessedTomogram.processedTomogramId)
        )
        for row in rows:
            self.processed.setdefault((int(row.tomogramId), str(row.processingType)), row)

    def load_parameters(self, session: Session, job_ids: Iterable[int]) -> None:
        """Load the ProcessingJobParameter rows of the jobs ``job_ids`` not loaded yet: one SELECT."""
        wanted = sorted(set(job_ids) - set(self._parameters))
        if not wanted:
            return
        for job in wanted:
            self._parameters[job] = {}
        rows = session.scalars(
            sa.select(ProcessingJobParameter)
            .where(ProcessingJobParameter.processingJobId.in_(wanted))
            .order_by(ProcessingJobParameter.processingJobParameterId.desc())
        )
        for row in rows:
            self._parameters[int(row.processingJobId)][str(row.parameterKey)] = row  # the lowest id wins

    def parameters(self, session: Session, job_id: int) -> dict[str, ProcessingJobParameter]:
        """The job's ProcessingJobParameter rows by key (loaded once per transaction)."""
        found = self._parameters.get(job_id)
        if found is None:
            rows = session.scalars(
                sa.select(ProcessingJobParameter)
                .where(ProcessingJobParameter.processingJobId == job_id)
                .order_by(ProcessingJobParameter.processingJobParameterId.desc())
            )
            found = self._parameters[job_id] = {str(row.parameterKey): row for row in rows}
        return found

    def tilt_alignments(self, session: Session, tomogram_id: int) -> dict[int, TiltImageAlignment]:
        """The tomogram's TiltImageAlignment rows by movie (loaded once per transaction)."""
        found = self.alignments.get(tomogram_id)
        if found is None:
            rows = session.scalars(
                sa.select(TiltImageAlignment).where(TiltImageAlignment.tomogramId == tomogram_id)
            )
            found = self.alignments[tomogram_id] = {int(row.movieId): row for row in rows}
        return found


def batch_rows(session: Session) -> BatchRows:
    """The :class:`BatchRows` of ``session``'s transaction."""
    found: BatchRows = session.info.setdefault("tiltstream.batch", BatchRows())
    return found


def prepare(chain: Chain, session: Session, events: Iterable[SinkEvent]) -> None:
    """Load (and create, empty, where missing) the Movie, MotionCorrection and CTF rows of ``events``.

    Raises
    ------
    RecordRejectedError
        When an event's visit or tilt series cannot be written (the caller writes the batch in halves).
    """
    events = list(events)
    _programs(chain, session, events)
    movies: dict[tuple[int, int], int | None] = {}  # key -> motion-correction program (None: movie only)
    ctfs: set[tuple[int, int]] = set()
    for event in events:
        if not isinstance(event, _PER_TILT):
            continue
        key = (chain.collection(session, event.metadata), event.acquisition_order + 1)
        program = movies.get(key)
        if not isinstance(event, MovieAcquired):
            program = program or chain.program(session, event.metadata, "motioncorr")[1].autoProcProgramId
        movies[key] = program
        if isinstance(event, CtfEstimated):
            ctfs.add(key)
    if not movies:
        return
    batch = batch_rows(session)
    _movies(chain, session, batch, set(movies))
    wanted = {batch.movies[key]: app for key, app in movies.items() if app is not None}
    _motions(chain, session, batch, wanted)
    _ctfs(chain, session, batch, {batch.motions[int(batch.movies[key].movieId)] for key in ctfs})


def _stages(event: SinkEvent) -> tuple[tuple[str, str], ...]:
    """The (stage, request) programs applying ``event`` looks up (and creates when missing)."""
    match event:
        case MovieMotionCorrected():
            return (("motioncorr", ""),)
        case CtfEstimated():
            return (("ctf", ""), ("motioncorr", ""))
        case ReconstructionRequested() | TomogramReconstructed():
            return (("reconstruct", event.request_id),)
        case TomogramDenoised():
            return (("denoise", event.request_id), ("reconstruct", event.request_id))
        case ProcessingFailed():
            return ((event.stage, event.request_id or ""),)
    return ()


def _programs(chain: Chain, session: Session, events: list[SinkEvent]) -> None:
    """Load the batch's jobs, programs and job parameters, creating the missing jobs and programs in bulk.

    Exactly the ProcessingJob and AutoProcProgram rows that applying the events would create, with one
    SELECT per table for the batch (and one multi-row INSERT and SELECT per table when some are missing)
    instead of a few statements per stage per tilt series.
    """
    wanted: dict[int, set[tuple[str, str]]] = {}  # dataCollectionId -> (stage, request)
    series: dict[int, str] = {}  # dataCollectionId -> tilt series
    for event in events:
        stages = _stages(event)
        if stages:
            dc = chain.collection(session, event.metadata)
            series[dc] = event.metadata.tilt_series_id
            wanted.setdefault(dc, set()).update(stages)
    if not wanted:
        return
    batch = batch_rows(session)
    batch.load_jobs(session, wanted)
    needed = [(dc, stage, key) for dc, keys in sorted(wanted.items()) for stage, key in sorted(keys)]
    jobs = [
        {"dataCollectionId": dc, "automatic": 1, "displayName": stage, "recipe": f"tiltstream-{stage}",
         "comments": key or None}
        for dc, stage, key in needed if (f"tiltstream-{stage}", key) not in batch.jobs(session, dc)
    ]  # fmt: skip
    if jobs:
        _insert_many(chain, session, ProcessingJob, jobs)
        batch.load_jobs(session, wanted)
    with_uuid = chain.rows.schema.has("AutoProcProgram", "jobUuid")
    programs = []
    for dc, stage, key in needed:
        job, app = batch.jobs(session, dc)[(f"tiltstream-{stage}", key)]
        if app is None:
            values: dict[str, Any] = {"processingJobId": job.processingJobId}
            if with_uuid:
                values["jobUuid"] = job_uuid(series[dc], stage, key)
            programs.append(values)
    if programs:
        _insert_many(chain, session, AutoProcProgram, programs)
        batch.load_jobs(session, wanted)
    job_ids = [int(job.processingJobId) for dc in wanted for job, _ in batch.jobs(session, dc).values()]
    batch.load_parameters(session, job_ids)
    versioned = (TomogramReconstructed, TomogramDenoised)
    batch.load_tomograms(
        session, [chain.collection(session, e.metadata) for e in events if isinstance(e, versioned)]
    )


def _movies(chain: Chain, session: Session, batch: BatchRows, keys: set[tuple[int, int]]) -> None:
    collections = sorted({dc for dc, _ in keys})

    def load() -> None:
        rows = session.scalars(
            sa.select(Movie).where(Movie.dataCollectionId.in_(collections)).order_by(Movie.movieId)
        )
        for row in rows:
            batch.movies.setdefault((int(row.dataCollectionId), int(row.movieNumber)), row)

    load()
    missing = [{"dataCollectionId": dc, "movieNumber": n} for dc, n in sorted(keys - set(batch.movies))]
    if missing:
        _insert_many(chain, session, Movie, missing)
        load()


def _motions(chain: Chain, session: Session, batch: BatchRows, wanted: dict[Movie, int]) -> None:
    ids = sorted(int(movie.movieId) for movie in wanted)
    if not ids:
        return

    def load() -> None:
        rows = session.scalars(
            sa.select(MotionCorrection)
            .where(MotionCorrection.movieId.in_(ids))
            .order_by(MotionCorrection.motionCorrectionId)
        )
        for row in rows:
            batch.motions.setdefault(int(row.movieId), row)

    load()
    missing = [
        {
            "movieId": movie.movieId,
            "dataCollectionId": movie.dataCollectionId,
            "autoProcProgramId": app,
            "imageNumber": movie.movieNumber,
        }
        for movie, app in sorted(wanted.items(), key=lambda item: int(item[0].movieId))
        if int(movie.movieId) not in batch.motions
    ]
    if missing:
        _insert_many(chain, session, MotionCorrection, missing)
        load()


def _ctfs(chain: Chain, session: Session, batch: BatchRows, motions: set[MotionCorrection]) -> None:
    ids = sorted(int(row.motionCorrectionId) for row in motions)
    if not ids:
        return

    def load() -> None:
        rows = session.scalars(sa.select(CTF).where(CTF.motionCorrectionId.in_(ids)).order_by(CTF.ctfId))
        for row in rows:
            batch.ctfs.setdefault(int(row.motionCorrectionId), row)

    load()
    missing = [{"motionCorrectionId": i} for i in ids if i not in batch.ctfs]
    if missing:
        _insert_many(chain, session, CTF, missing)
        load()


def _insert_many(chain: Chain, session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT of ``rows`` (each value checked against its column first)."""
    table: sa.Table = model.__table__
    for row in rows:
        for name, value in row.items():
            chain.rows.check(table.name, name, value, table.c[name].type)
    session.execute(sa.insert(table), rows)
