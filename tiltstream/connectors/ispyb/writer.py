"""One event -> the ISPyB rows it describes, written idempotently and in any order.

Each column is written by one kind of record only, or merged in an order-free way (earliest start,
latest end, a failure that sticks), so replaying topics from the start, in whatever interleaving the
consumer sees them, leaves the same rows. Per-movie rows wait for nothing: a CTF result that arrives
before its movie creates the Movie and MotionCorrection rows empty, and their own events fill them in.

Tomograms: one Tomogram per DataCollection holds the newest version. Its version is the ``version``
parameter of the reconstruction's ProcessingJob. A newer version supersedes the row (its values, its
TiltImageAlignment and ProcessedTomogram rows, which are emptied and refilled: ISPyB's processing role may
not delete); events of an older version then leave it alone, while
every version keeps its own ProcessingJob and AutoProcProgram as the record of the work done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from posixpath import dirname

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgram,
    ProcessedTomogram,
    ProcessingJob,
    ProcessingJobParameter,
    TiltImageAlignment,
    Tomogram,
)
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.acquisition import CollectionChanges
from tiltstream.connectors.ispyb.chain import Chain
from tiltstream.connectors.ispyb.outcomes import Outcome, Outcomes
from tiltstream.connectors.ispyb.paths import facility_path
from tiltstream.connectors.ispyb.probe import probe_schema
from tiltstream.connectors.ispyb.records import SinkEvent, VersionedEvent
from tiltstream.connectors.ispyb.rows import Rows, db_time, earliest, latest
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.streams.events import (
    CtfEstimated,
    DataPath,
    EventMetadata,
    MovieAcquired,
    MovieMotionCorrected,
    ProcessingFailed,
    ReconstructionRequested,
    TiltSeriesAcquisitionEnded,
    TomogramDenoised,
    TomogramReconstructed,
)

__all__ = ["IspybWriter", "tomogram_version"]

_VERSIONED = (
    "volumeFile", "stackFile", "sizeX", "sizeY", "sizeZ", "pixelSpacing", "residualErrorMean",
    "residualErrorSD", "tiltAngleOffset", "zShift", "fileDirectory", "centralSliceImage", "xyShiftPlot",
    "projXY", "projXZ", "recordTimeStamp", "globalAlignmentQuality", "thickness",
)  # fmt: skip


def tomogram_version(session: Session, tomogram: Tomogram | None) -> int | None:
    """The version of the reconstruction a Tomogram row holds (its ProcessingJob's ``version``)."""
    if tomogram is None or tomogram.autoProcProgramId is None:
        return None
    value = session.scalar(
        sa.select(ProcessingJobParameter.parameterValue)
        .join(AutoProcProgram, AutoProcProgram.processingJobId == ProcessingJobParameter.processingJobId)
        .where(
            AutoProcProgram.autoProcProgramId == tomogram.autoProcProgramId,
            ProcessingJobParameter.parameterKey == "version",
        )
    )
    return int(value) if value is not None else None


def _nm(angstroms: float | None) -> float | None:
    return None if angstroms is None else angstroms / 10.0


class IspybWriter:
    """Applies events to an ISPyB database inside the caller's transaction.

    Parameters
    ----------
    settings
        Data-root mount points, the service account's login and the visit pattern.
    """

    def __init__(self, settings: IspybSinkSettings) -> None:
        self.roots = dict(settings.roots)
        self.chain = Chain(settings)

    def apply(self, session: Session, event: SinkEvent) -> int:
        """Write ``event``; return how many rows it inserted or changed.

        Raises
        ------
        RecordRejectedError
            When the record can never be written.
        """
        if self.chain.schema is None:
            self.chain.use(probe_schema(session.connection()))
        if not session.info.get("tiltstream.watched"):
            session.info["tiltstream.watched"] = self.rows.watch(session) is session
        rows = self._dispatch(session, event)
        session.flush()
        return rows

    def _dispatch(self, session: Session, event: SinkEvent) -> int:
        match event:
            case MovieAcquired():
                return self._movie_acquired(session, event)
            case TiltSeriesAcquisitionEnded():
                return self._acquisition_ended(session, event)
            case MovieMotionCorrected():
                return self._motion_corrected(session, event)
            case CtfEstimated():
                return self._ctf_estimated(session, event)
            case ReconstructionRequested():
                return self._reconstruction_requested(session, event)
            case TomogramReconstructed():
                return self._tomogram_reconstructed(session, event)
            case TomogramDenoised():
                return self._tomogram_denoised(session, event)
            case ProcessingFailed():
                return self._processing_failed(session, event)

    @property
    def rows(self) -> Rows:
        """Checked writes for the database's schema (known after the first :meth:`apply`)."""
        return self.chain.rows

    def _path(self, data_path: DataPath | None) -> str | None:
        return facility_path(data_path, self.roots)

    def _ran(
        self,
        pj: ProcessingJob,
        app: AutoProcProgram,
        ended: datetime,
        duration_seconds: float | None,
        backend: str | None,
    ) -> int:
        """Merge a stage's run into its program: earliest start, latest end (its status: :meth:`_settle`).

        ``duration_seconds`` is ``None`` for a run that has only been requested (it has not finished).
        """
        finished = duration_seconds is not None
        started = ended - timedelta(seconds=float(duration_seconds or 0.0)) if finished else ended
        start, end = db_time(started), db_time(ended) if finished else None
        assign = self.rows.assign
        changed = assign(
            app,
            processingStartTime=earliest(app.processingStartTime, start),
            processingEndTime=latest(app.processingEndTime, end),
            recordTimeStamp=earliest(app.recordTimeStamp, start),
        )
        changed |= assign(pj, recordTimestamp=earliest(pj.recordTimestamp, start))
        if backend is not None:
            changed |= assign(app, processingPrograms=backend)
        return changed * 2

    def _settle(
        self,
        session: Session,
        pj: ProcessingJob,
        app: AutoProcProgram,
        subject: str,
        metadata: EventMetadata,
        failure: str | None = None,
    ) -> tuple[bool, int]:
        """Merge this attempt's outcome for ``subject``: (whether its values are current, rows changed)."""
        outcome = Outcome(metadata.attempt or 1, failure)
        return Outcomes(self.rows).settle(session, pj, app, subject, outcome)

    # -- acquisition ------------------------------------------------------------------------------

    def _movie_acquired(self, session: Session, event: MovieAcquired) -> int:
        dc = self.chain.collection(session, event.metadata)
        acquired = db_time(event.acquired_at)
        path = self._path(event.movie)
        movie = self.chain.movie(session, dc, event.acquisition_order)
        defocus = event.target_defocus_micrometres
        changed = self.rows.assign(
            movie,
            movieFullPath=path,
            angle=event.tilt_angle_degrees,
            fluence=event.prior_dose_e_per_angstrom2 + event.dose_e_per_angstrom2,
            numberOfFrames=event.frame_count,
            nominalDefocus=None if defocus is None else abs(defocus) * 1e4,  # an unsigned magnitude in Å
            createdTimeStamp=acquired,
        )
        values = {
            "imageDirectory": dirname(path or "") + "/",
            "imageSuffix": event.movie_format,
            "voltage": event.voltage_kv,
            "exposureTime": event.exposure_time_seconds,
            "imageSizeX": event.image_width_pixels,
            "imageSizeY": event.image_height_pixels,
        }
        return changed + self.chain.merge_collection(
            session, event.metadata, dc, CollectionChanges(started=acquired, values=values)
        )

    def _acquisition_ended(self, session: Session, event: TiltSeriesAcquisitionEnded) -> int:
        dc = self.chain.collection(session, event.metadata)
        values = {"numberOfImages": event.acquired_tilt_count, "runStatus": event.reason}
        changes = CollectionChanges(ended=db_time(event.ended_at), values=values)
        return self.chain.merge_collection(session, event.metadata, dc, changes)

    # -- per-movie results --------------------------------------------------------------------------

    def _motion_corrected(self, session: Session, event: MovieMotionCorrected) -> int:
        metadata = event.metadata
        dc = self.chain.collection(session, metadata)
        pj, app = self.chain.program(session, metadata, "motioncorr")
        changed = self._ran(pj, app, metadata.occurred_at, event.duration_seconds, event.backend)
        current, settled = self._settle(session, pj, app, event.movie_id, metadata)
        movie = self.chain.movie(session, dc, event.acquisition_order)
        row = self.chain.motion_correction(session, dc, movie, app)
        if not current:  # a newer attempt's values are there
            return changed + settled
        return (
            changed
            + settled
            + self.rows.assign(
                row,
                autoProcProgramId=app.autoProcProgramId,
                imageNumber=movie.movieNumber,
                firstFrame=event.first_frame + 1,
                lastFrame=event.last_frame + 1,
                dosePerFrame=event.dose_per_frame_e_per_angstrom2,
                totalMotion=event.total_motion_angstroms,
                averageMotionPerFrame=event.average_motion_per_frame_angstroms,
                driftPlotFullPath=self._path(event.drift_plot),
                micrographFullPath=self._path(event.micrograph),
                micrographSnapshotFullPath=self._path(event.thumbnail),
                patchesUsedX=event.patches_x,
                patchesUsedY=event.patches_y,
            )
        )

    def _ctf_estimated(self, session: Session, event: CtfEstimated) -> int:
        metadata = event.metadata
        dc = self.chain.collection(session, metadata)
        pj, app = self.chain.program(session, metadata, "ctf")
        changed = self._ran(pj, app, metadata.occurred_at, event.duration_seconds, event.backend)
        current, settled = self._settle(session, pj, app, event.movie_id, metadata)
        changed += settled
        movie = self.chain.movie(session, dc, event.acquisition_order)
        _, motion_app = self.chain.program(session, metadata, "motioncorr")
        motion = self.chain.motion_correction(session, dc, movie, motion_app)
        ctf = session.scalar(sa.select(CTF).where(CTF.motionCorrectionId == motion.motionCorrectionId))
        if ctf is None:
            ctf = self.rows.insert(session, CTF, motionCorrectionId=motion.motionCorrectionId)
        if not current:
            return changed
        return changed + self.rows.assign(
            ctf,
            autoProcProgramId=app.autoProcProgramId,
            boxSizeX=float(event.box_size_pixels),
            boxSizeY=float(event.box_size_pixels),
            minResolution=event.min_resolution_angstroms,
            maxResolution=event.max_resolution_angstroms,
            astigmatism=event.astigmatism_angstroms,
            astigmatismAngle=event.astigmatism_angle_degrees,
            estimatedResolution=event.fit_resolution_angstroms,
            estimatedDefocus=(event.defocus_u_angstroms + event.defocus_v_angstroms) / 2,
            ccValue=event.fit_score,
            fftTheoreticalFullPath=self._path(event.power_spectrum),
        )

    # -- per-version results ------------------------------------------------------------------------

    def _reconstruction(
        self, session: Session, event: VersionedEvent
    ) -> tuple[ProcessingJob, AutoProcProgram, int]:
        pj, app = self.chain.program(session, event.metadata, "reconstruct", event.request_id)
        changed = self.chain.parameter(session, pj, "version", str(event.version))
        changed += self.chain.parameter(session, pj, "request_id", event.request_id)
        return pj, app, changed

    def _current_tomogram(
        self, session: Session, event: VersionedEvent, app: AutoProcProgram
    ) -> tuple[Tomogram | None, int]:
        """The collection's Tomogram if ``event``'s version is the newest seen, superseding older ones."""
        dc = self.chain.collection(session, event.metadata)
        tomogram = session.scalar(sa.select(Tomogram).where(Tomogram.dataCollectionId == dc))
        if tomogram is None:
            tomogram = self.rows.insert(
                session, Tomogram, dataCollectionId=dc, autoProcProgramId=app.autoProcProgramId
            )
            return tomogram, 1
        if tomogram.autoProcProgramId == app.autoProcProgramId:
            return tomogram, 0
        current = tomogram_version(session, tomogram)
        if current is not None and current >= event.version:
            return None, 0  # an older version (or the same one under another request): leave it
        # the processing role may not DELETE: the old version's rows are emptied, the new one refills them
        session.execute(
            sa.update(TiltImageAlignment)
            .where(TiltImageAlignment.tomogramId == tomogram.tomogramId)
            .values(refinedTiltAngle=None, refinedTiltAxis=None, residualError=None)
        )
        session.execute(
            sa.update(ProcessedTomogram)
            .where(ProcessedTomogram.tomogramId == tomogram.tomogramId)
            .values(filePath=None)
        )
        versioned = [c for c in _VERSIONED if self.rows.schema.has("Tomogram", c)]
        self.rows.assign(tomogram, autoProcProgramId=app.autoProcProgramId, **dict.fromkeys(versioned))
        return tomogram, 1

    def _processed(self, session: Session, tomogram: Tomogram, kind: str, path: str | None) -> int:
        row = session.scalar(
            sa.select(ProcessedTomogram).where(
                ProcessedTomogram.tomogramId == tomogram.tomogramId, ProcessedTomogram.processingType == kind
            )
        )
        if row is None:
            self.rows.insert(
                session, ProcessedTomogram, tomogramId=tomogram.tomogramId, processingType=kind, filePath=path
            )
            return 1
        return self.rows.assign(row, filePath=path)

    def _reconstruction_requested(self, session: Session, event: ReconstructionRequested) -> int:
        pj, app, changed = self._reconstruction(session, event)
        changed += self.chain.parameter(session, pj, "reason", event.reason)
        return changed + self._ran(pj, app, event.metadata.occurred_at, None, None)

    def _tomogram_reconstructed(self, session: Session, event: TomogramReconstructed) -> int:
        pj, app, changed = self._reconstruction(session, event)
        changed += self._ran(pj, app, event.metadata.occurred_at, event.duration_seconds, event.backend)
        current, settled = self._settle(session, pj, app, event.request_id, event.metadata)
        changed += settled
        if not current:  # a newer attempt of this request is there
            return changed
        tomogram, superseded = self._current_tomogram(session, event, app)
        if tomogram is None:
            return changed
        volume = self._path(event.tomogram)
        stack = self._path(event.aligned_stack)
        spacing = event.pixel_spacing_angstroms
        if self.rows.schema.has("Tomogram", "thickness"):  # not in every schema version
            changed += self.rows.assign(tomogram, thickness=event.size_z_pixels * spacing / 10.0)
        changed += superseded + self.rows.assign(
            tomogram,
            volumeFile=volume,
            stackFile=stack,
            sizeX=event.size_x_pixels,
            sizeY=event.size_y_pixels,
            sizeZ=event.size_z_pixels,
            pixelSpacing=spacing,
            residualErrorMean=_nm(event.residual_error_mean_angstroms),
            residualErrorSD=_nm(event.residual_error_sd_angstroms),
            tiltAngleOffset=event.tilt_angle_offset_degrees,
            zShift=event.z_shift_angstroms,
            fileDirectory=dirname(volume or "") + "/",
            centralSliceImage=self._path(event.central_slice),
            xyShiftPlot=self._path(event.alignment_plot),
            projXY=self._path(event.xy_projection),
            projXZ=self._path(event.xz_projection),
            globalAlignmentQuality=event.global_alignment_quality,
            recordTimeStamp=event.metadata.occurred_at,
        )
        changed += self._tilt_alignments(session, event, tomogram)
        return changed + self._processed(session, tomogram, "Stack", stack)

    def _tilt_alignments(self, session: Session, event: TomogramReconstructed, tomogram: Tomogram) -> int:
        """Write the refined angles of the tilts the reconstruction used (TiltImageAlignment)."""
        dc = self.chain.collection(session, event.metadata)
        changed = 0
        for tilt in event.tilt_alignments:
            if not tilt.included:
                continue
            movie = self.chain.movie(session, dc, tilt.acquisition_order)
            row = session.get(TiltImageAlignment, (movie.movieId, tomogram.tomogramId))
            if row is None:
                row = self.rows.insert(
                    session, TiltImageAlignment, movieId=movie.movieId, tomogramId=tomogram.tomogramId
                )
            changed += self.rows.assign(
                row,
                refinedTiltAngle=tilt.refined_tilt_angle_degrees,
                refinedTiltAxis=tilt.tilt_axis_angle_degrees,
                residualError=_nm(tilt.residual_error_angstroms),
            )
        return changed

    def _tomogram_denoised(self, session: Session, event: TomogramDenoised) -> int:
        metadata = event.metadata
        pj, app = self.chain.program(session, metadata, "denoise", event.request_id)
        changed = self._ran(pj, app, metadata.occurred_at, event.duration_seconds, event.backend)
        changed += self.chain.parameter(session, pj, "model", event.model)
        current, settled = self._settle(session, pj, app, event.request_id, metadata)
        changed += settled
        _, reconstruction, versioned = self._reconstruction(session, event)
        if not current:
            return changed + versioned
        tomogram, superseded = self._current_tomogram(session, event, reconstruction)
        if tomogram is None:
            return changed + versioned
        path = self._path(event.denoised_tomogram)
        return changed + versioned + superseded + self._processed(session, tomogram, "Denoised", path)

    # -- failures ---------------------------------------------------------------------------------

    def _processing_failed(self, session: Session, event: ProcessingFailed) -> int:
        metadata = event.metadata
        pj, app = self.chain.program(session, metadata, event.stage, event.request_id or "")
        when = db_time(metadata.occurred_at)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""
        length = self.rows.schema.lengths.get("AutoProcProgram.processingMessage", 255)
        message = f"{stamp} {event.subject_id}: {event.error_class}: {event.error_message}"[:length]
        assign = self.rows.assign
        changed = assign(
            app,
            processingEndTime=latest(app.processingEndTime, when),
            processingStartTime=earliest(app.processingStartTime, when),
            recordTimeStamp=earliest(app.recordTimeStamp, when),
        )
        changed += assign(pj, recordTimestamp=earliest(pj.recordTimestamp, when))
        _, settled = self._settle(session, pj, app, event.subject_id, metadata, failure=message)
        return changed + settled
