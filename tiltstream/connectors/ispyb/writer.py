"""One event -> the ISPyB rows it describes, written idempotently and in any order.

Each column is written by one kind of record only, or merged in an order-free way (earliest start,
latest end; a stage's values and status from each subject's newest attempt, a failure sticking only at the
same attempt: :mod:`~tiltstream.connectors.ispyb.outcomes`), so replaying topics from the start, in
whatever interleaving the consumer sees them, leaves the same rows. What events say about their data
collection is combined per transaction and written once at its end (:meth:`IspybWriter.finish`).
Per-movie rows wait for nothing: a CTF result that arrives before its movie creates the Movie and
MotionCorrection rows empty, and their own events fill them in. Tomograms: see
:mod:`~tiltstream.connectors.ispyb.tomograms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from posixpath import dirname

import sqlalchemy as sa
from ispyb.sqlalchemy import CTF
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.acquisition import CollectionChanges
from tiltstream.connectors.ispyb.batch import batch_rows, prepare
from tiltstream.connectors.ispyb.probe import probe_schema
from tiltstream.connectors.ispyb.records import SinkEvent
from tiltstream.connectors.ispyb.rows import db_time, earliest, latest
from tiltstream.connectors.ispyb.tomograms import TomogramWrites, tomogram_version
from tiltstream.connectors.ispyb.upserts import flush_rows
from tiltstream.streams.events import (
    CtfEstimated,
    MovieAcquired,
    MovieMotionCorrected,
    ProcessingFailed,
    ReconstructionRequested,
    TiltSeriesAcquisitionEnded,
    TomogramDenoised,
    TomogramReconstructed,
)

__all__ = ["IspybWriter", "tomogram_version"]


class IspybWriter(TomogramWrites):
    """Applies events to an ISPyB database inside the caller's transaction.

    Parameters
    ----------
    settings
        Data-root mount points, the service account's login and the visit pattern.
    """

    def prepare(self, session: Session, events: Sequence[SinkEvent]) -> None:
        """Load the rows a batch of ``events`` needs, creating the missing per-tilt rows in bulk.

        Optional (:meth:`apply` finds or creates what it needs), but the batch's point: see
        :mod:`~tiltstream.connectors.ispyb.batch`.

        Raises
        ------
        RecordRejectedError
            When an event's visit or tilt series can never be written.
        """
        self._begin(session)
        prepare(self.chain, session, events)

    def apply(self, session: Session, event: SinkEvent) -> int:
        """Write ``event``; return how many rows it inserted or changed (flushed by :meth:`finish`).

        Raises
        ------
        RecordRejectedError
            When the record can never be written.
        """
        self._begin(session)
        return self._dispatch(session, event)

    def _begin(self, session: Session) -> None:
        if self.chain.schema is None:
            self.chain.use(probe_schema(session.connection()))
        if not session.info.get("tiltstream.watched"):
            session.info["tiltstream.watched"] = self.rows.watch(session) is session

    def finish(self, session: Session) -> int:
        """Write what the transaction's events held back (data-collection changes); the rows changed."""
        if self.chain.schema is None:  # nothing applied
            return 0
        rows = self.chain.settle_collections(session)
        flush_rows(session)
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
        ctfs = batch_rows(session).ctfs
        ctf = ctfs.get(int(motion.motionCorrectionId))
        if ctf is None:
            ctf = session.scalar(sa.select(CTF).where(CTF.motionCorrectionId == motion.motionCorrectionId))
        if ctf is None:
            ctf = self.rows.insert(session, CTF, motionCorrectionId=motion.motionCorrectionId)
        ctfs[int(motion.motionCorrectionId)] = ctf
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
