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

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from posixpath import dirname
from typing import Any

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
from tiltstream.connectors.ispyb.paths import facility_path
from tiltstream.connectors.ispyb.probe import probe_schema
from tiltstream.connectors.ispyb.rows import Rows, db_time, earliest, latest
from tiltstream.connectors.ispyb.settings import IspybSinkSettings

__all__ = ["SINK_RECORDS", "IspybWriter", "tomogram_version"]

#: The records the sink writes (every other record is skipped).
SINK_RECORDS: tuple[str, ...] = (
    "MovieAcquired",
    "TiltSeriesAcquisitionEnded",
    "MovieMotionCorrected",
    "CtfEstimated",
    "ReconstructionRequested",
    "TomogramReconstructed",
    "TomogramDenoised",
    "ProcessingFailed",
)

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
        self._handlers: dict[str, Callable[[Session, dict[str, Any]], int]] = {
            "MovieAcquired": self._movie_acquired,
            "TiltSeriesAcquisitionEnded": self._acquisition_ended,
            "MovieMotionCorrected": self._motion_corrected,
            "CtfEstimated": self._ctf_estimated,
            "ReconstructionRequested": self._reconstruction_requested,
            "TomogramReconstructed": self._tomogram_reconstructed,
            "TomogramDenoised": self._tomogram_denoised,
            "ProcessingFailed": self._processing_failed,
        }

    def apply(self, session: Session, record: str, value: dict[str, Any]) -> int:
        """Write event ``value`` of ``record`` (short name); return how many rows it inserted or changed.

        Raises
        ------
        RecordRejectedError
            When the record can never be written.
        """
        handler = self._handlers.get(record)
        if handler is None:
            return 0
        if self.chain.schema is None:
            self.chain.use(probe_schema(session.connection()))
        if not session.info.get("tiltstream.watched"):
            session.info["tiltstream.watched"] = self.rows.watch(session) is session
        rows = handler(session, value)
        session.flush()
        return rows

    @property
    def rows(self) -> Rows:
        """Checked writes for the database's schema (known after the first :meth:`apply`)."""
        return self.chain.rows

    def _path(self, data_path: Mapping[str, Any] | None) -> str | None:
        return facility_path(data_path, self.roots)

    def _ran(
        self,
        pj: ProcessingJob,
        app: AutoProcProgram,
        value: dict[str, Any],
        *,
        finished: bool,
        backend: str | None,
    ) -> int:
        """Merge a stage's run into its program: earliest start, latest end, success unless it failed."""
        ended: datetime = value["metadata"]["occurred_at"]
        started = (
            ended - timedelta(seconds=float(value.get("duration_seconds") or 0.0)) if finished else ended
        )
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
        if finished and app.processingStatus != 0:
            changed |= assign(app, processingStatus=1)
        return changed * 2

    # -- acquisition ------------------------------------------------------------------------------

    def _movie_acquired(self, session: Session, value: dict[str, Any]) -> int:
        dc = self.chain.collection(session, value["metadata"])
        acquired = db_time(value["acquired_at"])
        path = self._path(value["movie"])
        movie = self.chain.movie(session, dc, int(value["acquisition_order"]))
        defocus = value.get("target_defocus_micrometres")
        changed = self.rows.assign(
            movie,
            movieFullPath=path,
            angle=value["tilt_angle_degrees"],
            fluence=value["prior_dose_e_per_angstrom2"] + value["dose_e_per_angstrom2"],
            numberOfFrames=value["frame_count"],
            nominalDefocus=None if defocus is None else abs(defocus) * 1e4,  # an unsigned magnitude in Å
            createdTimeStamp=acquired,
        )
        values = {
            "imageDirectory": dirname(path or "") + "/",
            "imageSuffix": value["movie_format"],
            "voltage": value["voltage_kv"],
            "exposureTime": value["exposure_time_seconds"],
            "imageSizeX": value["image_width_pixels"],
            "imageSizeY": value["image_height_pixels"],
        }
        return changed + self.chain.merge_collection(
            session, value["metadata"], dc, CollectionChanges(started=acquired, values=values)
        )

    def _acquisition_ended(self, session: Session, value: dict[str, Any]) -> int:
        dc = self.chain.collection(session, value["metadata"])
        values = {"numberOfImages": value["acquired_tilt_count"], "runStatus": value["reason"]}
        changes = CollectionChanges(ended=db_time(value["ended_at"]), values=values)
        return self.chain.merge_collection(session, value["metadata"], dc, changes)

    # -- per-movie results --------------------------------------------------------------------------

    def _motion_corrected(self, session: Session, value: dict[str, Any]) -> int:
        metadata = value["metadata"]
        dc = self.chain.collection(session, metadata)
        pj, app = self.chain.program(session, metadata, "motioncorr")
        changed = self._ran(pj, app, value, finished=True, backend=value["backend"])
        movie = self.chain.movie(session, dc, int(value["acquisition_order"]))
        row = self.chain.motion_correction(session, dc, movie, app)
        return changed + self.rows.assign(
            row,
            autoProcProgramId=app.autoProcProgramId,
            imageNumber=movie.movieNumber,
            firstFrame=value["first_frame"] + 1,
            lastFrame=value["last_frame"] + 1,
            dosePerFrame=value["dose_per_frame_e_per_angstrom2"],
            totalMotion=value["total_motion_angstroms"],
            averageMotionPerFrame=value["average_motion_per_frame_angstroms"],
            driftPlotFullPath=self._path(value.get("drift_plot")),
            micrographFullPath=self._path(value["micrograph"]),
            micrographSnapshotFullPath=self._path(value.get("thumbnail")),
            patchesUsedX=value["patches_x"],
            patchesUsedY=value["patches_y"],
        )

    def _ctf_estimated(self, session: Session, value: dict[str, Any]) -> int:
        metadata = value["metadata"]
        dc = self.chain.collection(session, metadata)
        pj, app = self.chain.program(session, metadata, "ctf")
        changed = self._ran(pj, app, value, finished=True, backend=value["backend"])
        movie = self.chain.movie(session, dc, int(value["acquisition_order"]))
        _, motion_app = self.chain.program(session, metadata, "motioncorr")
        motion = self.chain.motion_correction(session, dc, movie, motion_app)
        ctf = session.scalar(sa.select(CTF).where(CTF.motionCorrectionId == motion.motionCorrectionId))
        if ctf is None:
            ctf = self.rows.insert(session, CTF, motionCorrectionId=motion.motionCorrectionId)
        return changed + self.rows.assign(
            ctf,
            autoProcProgramId=app.autoProcProgramId,
            boxSizeX=float(value["box_size_pixels"]),
            boxSizeY=float(value["box_size_pixels"]),
            minResolution=value["min_resolution_angstroms"],
            maxResolution=value["max_resolution_angstroms"],
            astigmatism=value["astigmatism_angstroms"],
            astigmatismAngle=value["astigmatism_angle_degrees"],
            estimatedResolution=value["fit_resolution_angstroms"],
            estimatedDefocus=(value["defocus_u_angstroms"] + value["defocus_v_angstroms"]) / 2,
            ccValue=value["fit_score"],
            fftTheoreticalFullPath=self._path(value.get("power_spectrum")),
        )

    # -- per-version results ------------------------------------------------------------------------

    def _reconstruction(
        self, session: Session, value: dict[str, Any]
    ) -> tuple[ProcessingJob, AutoProcProgram, int]:
        pj, app = self.chain.program(session, value["metadata"], "reconstruct", value["request_id"])
        changed = self.chain.parameter(session, pj, "version", str(int(value["version"])))
        changed += self.chain.parameter(session, pj, "request_id", value["request_id"])
        return pj, app, changed

    def _current_tomogram(
        self, session: Session, value: dict[str, Any], app: AutoProcProgram
    ) -> tuple[Tomogram | None, int]:
        """The collection's Tomogram if ``value``'s version is the newest seen, superseding older ones."""
        dc = self.chain.collection(session, value["metadata"])
        version = int(value["version"])
        tomogram = session.scalar(sa.select(Tomogram).where(Tomogram.dataCollectionId == dc))
        if tomogram is None:
            tomogram = self.rows.insert(
                session, Tomogram, dataCollectionId=dc, autoProcProgramId=app.autoProcProgramId
            )
            return tomogram, 1
        if tomogram.autoProcProgramId == app.autoProcProgramId:
            return tomogram, 0
        current = tomogram_version(session, tomogram)
        if current is not None and current >= version:
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

    def _reconstruction_requested(self, session: Session, value: dict[str, Any]) -> int:
        pj, app, changed = self._reconstruction(session, value)
        changed += self.chain.parameter(session, pj, "reason", value["reason"])
        return changed + self._ran(pj, app, value, finished=False, backend=None)

    def _tomogram_reconstructed(self, session: Session, value: dict[str, Any]) -> int:
        pj, app, changed = self._reconstruction(session, value)
        changed += self._ran(pj, app, value, finished=True, backend=value["backend"])
        tomogram, superseded = self._current_tomogram(session, value, app)
        if tomogram is None:
            return changed
        volume = self._path(value["tomogram"])
        stack = self._path(value["aligned_stack"])
        spacing = value["pixel_spacing_angstroms"]
        if self.rows.schema.has("Tomogram", "thickness"):  # not in every schema version
            changed += self.rows.assign(tomogram, thickness=value["size_z_pixels"] * spacing / 10.0)
        changed += superseded + self.rows.assign(
            tomogram,
            volumeFile=volume,
            stackFile=stack,
            sizeX=value["size_x_pixels"],
            sizeY=value["size_y_pixels"],
            sizeZ=value["size_z_pixels"],
            pixelSpacing=spacing,
            residualErrorMean=_nm(value.get("residual_error_mean_angstroms")),
            residualErrorSD=_nm(value.get("residual_error_sd_angstroms")),
            tiltAngleOffset=value.get("tilt_angle_offset_degrees"),
            zShift=value.get("z_shift_angstroms"),
            fileDirectory=dirname(volume or "") + "/",
            centralSliceImage=self._path(value.get("central_slice")),
            xyShiftPlot=self._path(value.get("alignment_plot")),
            projXY=self._path(value.get("xy_projection")),
            projXZ=self._path(value.get("xz_projection")),
            globalAlignmentQuality=value.get("global_alignment_quality"),
            recordTimeStamp=value["metadata"]["occurred_at"],
        )
        dc = self.chain.collection(session, value["metadata"])
        for tilt in value["tilt_alignments"]:
            if not tilt["included"]:
                continue
            movie = self.chain.movie(session, dc, int(tilt["acquisition_order"]))
            row = session.get(TiltImageAlignment, (movie.movieId, tomogram.tomogramId))
            if row is None:
                row = self.rows.insert(
                    session, TiltImageAlignment, movieId=movie.movieId, tomogramId=tomogram.tomogramId
                )
            changed += self.rows.assign(
                row,
                refinedTiltAngle=tilt["refined_tilt_angle_degrees"],
                refinedTiltAxis=tilt["tilt_axis_angle_degrees"],
                residualError=_nm(tilt.get("residual_error_angstroms")),
            )
        return changed + self._processed(session, tomogram, "Stack", stack)

    def _tomogram_denoised(self, session: Session, value: dict[str, Any]) -> int:
        metadata = value["metadata"]
        pj, app = self.chain.program(session, metadata, "denoise", value["request_id"])
        changed = self._ran(pj, app, value, finished=True, backend=value["backend"])
        changed += self.chain.parameter(session, pj, "model", value["model"])
        _, reconstruction, versioned = self._reconstruction(session, value)
        tomogram, superseded = self._current_tomogram(session, value, reconstruction)
        if tomogram is None:
            return changed + versioned
        path = self._path(value["denoised_tomogram"])
        return changed + versioned + superseded + self._processed(session, tomogram, "Denoised", path)

    # -- failures ---------------------------------------------------------------------------------

    def _processing_failed(self, session: Session, value: dict[str, Any]) -> int:
        metadata = value["metadata"]
        pj, app = self.chain.program(session, metadata, value["stage"], value.get("request_id") or "")
        when = db_time(metadata["occurred_at"])
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""
        length = self.rows.schema.lengths.get("AutoProcProgram.processingMessage", 255)
        message = f"{stamp} {value['subject_id']}: {value['error_class']}: {value['error_message']}"[:length]
        assign = self.rows.assign
        changed = assign(
            app,
            processingStatus=0,
            processingMessage=max(app.processingMessage or "", message),
            processingEndTime=latest(app.processingEndTime, when),
            processingStartTime=earliest(app.processingStartTime, when),
            recordTimeStamp=earliest(app.recordTimeStamp, when),
        )
        return changed + assign(pj, recordTimestamp=earliest(pj.recordTimestamp, when))
