"""Per-version results: one Tomogram per DataCollection holds the newest reconstruction version.

Its version is the ``version`` parameter of the reconstruction's ProcessingJob. A newer version supersedes
the row (its values, its TiltImageAlignment and ProcessedTomogram rows, which are emptied and refilled:
ISPyB's processing role may not delete); events of an older version then leave it alone, while every
version keeps its own ProcessingJob and AutoProcProgram as the record of the work done. Within a version,
the newest attempt of its request wins (:mod:`~tiltstream.connectors.ispyb.outcomes`).
"""

from __future__ import annotations

from posixpath import dirname

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    ProcessedTomogram,
    ProcessingJob,
    ProcessingJobParameter,
    TiltImageAlignment,
    Tomogram,
)
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.batch import batch_rows
from tiltstream.connectors.ispyb.records import VersionedEvent
from tiltstream.connectors.ispyb.stages import StageWrites, nm
from tiltstream.connectors.ispyb.upserts import flush_rows
from tiltstream.streams.events import ReconstructionRequested, TomogramDenoised, TomogramReconstructed

__all__ = ["TomogramWrites", "tomogram_version"]

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


class TomogramWrites(StageWrites):
    """Writes of the per-version records (reconstruction requested, reconstructed, denoised)."""

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
        batch = batch_rows(session)
        tomogram = batch.tomogram(session, dc)
        if tomogram is None:
            tomogram = batch.tomograms[dc] = self.rows.insert(
                session, Tomogram, dataCollectionId=dc, autoProcProgramId=app.autoProcProgramId
            )
            batch.processed_loaded.add(int(tomogram.tomogramId))  # it has none yet
            return tomogram, 1
        if tomogram.autoProcProgramId == app.autoProcProgramId:
            return tomogram, 0
        current = tomogram_version(session, tomogram)
        if current is not None and current >= event.version:
            return None, 0  # an older version (or the same one under another request): leave it
        # the processing role may not DELETE: the old version's rows are emptied, the new one refills them
        flush_rows(session)  # the batch's pending rows first: the UPDATEs below must see them
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
        batch = batch_rows(session)
        row = batch.processed_tomogram(session, int(tomogram.tomogramId), kind)
        if row is None:
            batch.processed[(int(tomogram.tomogramId), kind)] = self.rows.insert(
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
            residualErrorMean=nm(event.residual_error_mean_angstroms),
            residualErrorSD=nm(event.residual_error_sd_angstroms),
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
        rows = batch_rows(session).tilt_alignments(session, int(tomogram.tomogramId))
        changed = 0
        for tilt in event.tilt_alignments:
            if not tilt.included:
                continue
            movie = self.chain.movie(session, dc, tilt.acquisition_order)
            row = rows.get(int(movie.movieId))
            if row is None:  # inserted with the others at the batch's flush
                row = rows[int(movie.movieId)] = TiltImageAlignment(
                    movieId=movie.movieId, tomogramId=tomogram.tomogramId
                )
                session.add(row)
            changed += self.rows.assign(
                row,
                refinedTiltAngle=tilt.refined_tilt_angle_degrees,
                refinedTiltAxis=tilt.tilt_axis_angle_degrees,
                residualError=nm(tilt.residual_error_angstroms),
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
