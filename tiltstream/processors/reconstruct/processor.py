"""The reconstruction step: ``ReconstructionRequested`` in, ``TomogramReconstructed`` out."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tiltstream.processors.reconstruct.alignment_files import AlnFile, write_aln, write_tlt, write_xf
from tiltstream.processors.reconstruct.ctf_correction import series_ctf
from tiltstream.processors.reconstruct.file_names import FILE_SUFFIXES
from tiltstream.processors.reconstruct.half_map_fsc import half_map_fsc
from tiltstream.processors.reconstruct.outliers import OutlierRule
from tiltstream.processors.reconstruct.outputs import write_alignment_plot
from tiltstream.processors.reconstruct.result import ReconstructionParameters, ReconstructionResult
from tiltstream.processors.reconstruct.settings import ReconstructionSettings
from tiltstream.processors.reconstruct.thickness import SlabEstimate, crop_to_slab, estimate_slab
from tiltstream.processors.reconstruct.tilt_stack import TiltStack, read_tilt_stack
from tiltstream.processors.runtime import DataRoots, ImpossibleParametersError, Job, Output, Processor
from tiltstream.processors.runtime.output_paths import series_folder as series_base
from tiltstream.processors.runtime.volume_io import write_mrc, write_png
from tiltstream.relion.project import PIPELINE_STAR
from tiltstream.streams.events import (
    DataPath,
    ReconstructionRequested,
    ReconstructionTilt,
    TiltAlignment,
    TomogramReconstructed,
)

__all__ = ["ReconstructionProcessor", "series_folder"]


def series_folder(value: dict[str, Any], output_folder: str) -> str:
    """``<session>/<output_folder>/<series>/v<version>``: version 2 of a request writes beside version 1."""
    return f"{series_base(value, output_folder)}/v{int(value['version'])}"


class ReconstructionProcessor(Processor[TiltStack]):
    """Align and reconstruct one tilt series with the configured backend and write its outputs."""

    stage = "reconstruct"
    input_record = "ReconstructionRequested"
    output_record = "TomogramReconstructed"

    def __init__(self, settings: ReconstructionSettings, roots: DataRoots | None = None) -> None:
        super().__init__(roots or DataRoots.from_settings(settings), settings.output_root)
        self.settings = settings
        self._device: Any = None

    def parameters_of(self, value: dict[str, Any]) -> ReconstructionParameters:
        """Backend parameters from the request and the settings; impossible values are refused."""
        binning = self.settings.binning_override or int(value.get("binning") or 4)
        thickness = float(value["thickness_angstroms"])
        if binning < 1 or thickness <= 0:
            raise ImpossibleParametersError(f"binning={binning}, thickness_angstroms={thickness}")
        return ReconstructionParameters(
            pixel_size_angstroms=float(value["pixel_size_angstroms"]),
            tilt_axis_angle_degrees=float(value["tilt_axis_angle_degrees"]),
            binning=binning,
            thickness_angstroms=thickness,
            refine_tilt_axis=self.settings.refine_tilt_axis,
            axis_search_degrees=self.settings.axis_search_degrees,
            refine_tilt_offset=self.settings.refine_tilt_offset,
            offset_search_degrees=self.settings.offset_search_degrees,
            tile_sidelength_pixels=self.settings.tile_sidelength_pixels,
            back_projection=self.settings.back_projection,
            half_tomograms=self.settings.half_tomograms,
            ctf_band_angstroms=self.settings.ctf_band_angstroms,
            outlier_rule=self._outlier_rule(),
        )

    def _outlier_rule(self) -> OutlierRule | None:
        """When the builtin alignment leaves a tilt out (None: switched off)."""
        if not self.settings.reject_alignment_outliers:
            return None
        return OutlierRule(
            correlation_mads=self.settings.outlier_correlation_mads,
            correlation_fraction=self.settings.outlier_correlation_fraction,
            residual_angstroms=self.settings.outlier_residual_angstroms,
            residual_mads=self.settings.outlier_residual_mads,
            max_fraction=self.settings.outlier_max_fraction,
        )

    def load(self, value: dict[str, Any]) -> TiltStack:
        """Read the used micrographs (prefetchable while the previous series reconstructs), and their
        even/odd frame sums where the builtin backend makes half tomograms of them."""
        halves = self.settings.frame_half_tomograms and self.settings.backend == "builtin"
        return read_tilt_stack(value, self.roots, self.settings.minimum_tilts, halves=halves)

    def _output(self, value: dict[str, Any], name: str) -> tuple[DataPath, Path]:
        return self.output_path(f"{series_folder(value, self.settings.output_folder)}/{name}")

    def _reconstruct(self, value: dict[str, Any], stack: TiltStack) -> ReconstructionResult:
        parameters = self.parameters_of(value)
        if self.settings.correct_ctf:
            parameters = dataclasses.replace(parameters, ctf=series_ctf(value, stack.tilts))
        tilts = np.array([float(t["tilt_angle_degrees"]) for t in stack.tilts])
        if self.settings.backend == "builtin":
            from tiltstream.processors.device import resolve_device
            from tiltstream.processors.reconstruct.builtin import reconstruct_builtin

            if self._device is None:
                self._device = resolve_device(self.settings.device)
            return reconstruct_builtin(stack.images, tilts, parameters, self._device, stack.halves)
        from tiltstream.processors.reconstruct.external import reconstruct_aretomo

        _, stack_path = self._output(value, "aretomo/stack.mrc")
        return reconstruct_aretomo(stack.images, tilts, parameters, value, self.settings, stack_path)

    def _fit_depth(self, result: ReconstructionResult) -> tuple[ReconstructionResult, SlabEstimate | None]:
        """Estimate the specimen's thickness from the tomogram; cut the volume to it when set to."""
        slab = estimate_slab(result.tomogram, result.pixel_spacing_angstroms)
        if slab is None or not self.settings.depth_from_thickness:
            return result, slab
        margin = self.settings.depth_margin_fraction
        cropped = crop_to_slab(result.tomogram, slab, margin)
        halves = result.half_tomograms
        if halves is not None:
            halves = (
                np.ascontiguousarray(crop_to_slab(halves[0], slab, margin)),
                np.ascontiguousarray(crop_to_slab(halves[1], slab, margin)),
            )
        return dataclasses.replace(
            result, tomogram=np.ascontiguousarray(cropped), half_tomograms=halves
        ), slab

    def _write_outputs(
        self, value: dict[str, Any], stack: TiltStack, result: ReconstructionResult
    ) -> dict[str, DataPath]:
        """Write tomogram, half tomograms, stack, pictures and alignment files; their data paths by
        event field."""
        name = str(value["metadata"]["tilt_series_id"]).rsplit(":", 1)[-1].replace("/", "_")
        paths: dict[str, DataPath] = {}

        def out(key: str) -> Path:
            paths[key], local = self._output(value, f"{name}{FILE_SUFFIXES[key]}")
            return local

        pixels = self.settings.png_max_pixels
        volume = result.tomogram  # (d, h, w)
        write_mrc(out("tomogram"), volume, result.pixel_spacing_angstroms)
        write_mrc(out("aligned_stack"), result.aligned_stack, result.pixel_spacing_angstroms)
        if result.half_tomograms is not None:
            write_mrc(out("tomogram_even"), result.half_tomograms[0], result.pixel_spacing_angstroms)
            write_mrc(out("tomogram_odd"), result.half_tomograms[1], result.pixel_spacing_angstroms)
        write_png(out("central_slice"), volume[volume.shape[0] // 2], max_pixels=pixels)
        write_png(out("xy_projection"), volume.sum(axis=0), max_pixels=pixels)
        write_png(out("xz_projection"), volume.sum(axis=1), max_pixels=pixels)
        write_alignment_plot(
            out("alignment_plot"),
            result.tilt_angles_degrees,
            result.shifts_xy_pixels * float(value["pixel_size_angstroms"]),
            result.tilt_axis_angle_degrees,
            str(value["metadata"]["tilt_series_id"]),
            np.array([float(stack.tilts[i]["tilt_angle_degrees"]) for i in sorted(result.dropped)]),
        )
        write_xf(out("imod_xf"), result.shifts_xy_pixels, result.tilt_axis_angle_degrees)
        write_tlt(out("imod_tlt"), result.tilt_angles_degrees)
        h, w = stack.images.shape[1:]
        kept = _kept_indices(stack, result)
        row_of = {int(index): row for row, index in enumerate(kept)}
        write_aln(
            out("alignment_file"),
            AlnFile(
                section=kept,
                tilt_axis_angle_degrees=np.full(len(kept), result.tilt_axis_angle_degrees),
                shifts_xy_pixels=result.shifts_xy_pixels,
                tilt_angles_degrees=result.tilt_angles_degrees,
                raw_size=(w, h, len(stack.tilts)),
                dark_sections=tuple(i for i in range(len(stack.tilts)) if i not in row_of),
                dark_tilt_angles_degrees=tuple(
                    float(t["tilt_angle_degrees"]) for i, t in enumerate(stack.tilts) if i not in row_of
                ),
                alpha_offset_degrees=result.tilt_angle_offset_degrees,
            ),
        )
        return paths

    def process(self, job: Job, inputs: TiltStack | None) -> list[Output]:
        """Reconstruct, write tomogram, stack, alignment files and pictures, build the event."""
        start = time.monotonic()
        value = job.value
        request = job.event(ReconstructionRequested)
        stack = inputs if inputs is not None else self.load(value)
        result, slab = self._fit_depth(self._reconstruct(value, stack))
        paths = self._write_outputs(value, stack, result)
        halves = result.half_tomograms
        fsc = None if halves is None else half_map_fsc(*halves, result.pixel_spacing_angstroms)
        residuals = _residuals_angstroms(result, request.pixel_size_angstroms)
        d, hv, wv = result.tomogram.shape
        event = TomogramReconstructed(
            metadata=self.output_metadata(job, (request.request_id,), self.settings.instance),
            request_id=request.request_id,
            version=request.version,
            tomogram=paths["tomogram"],
            aligned_stack=paths["aligned_stack"],
            central_slice=paths["central_slice"],
            xy_projection=paths["xy_projection"],
            xz_projection=paths["xz_projection"],
            alignment_plot=paths["alignment_plot"],
            alignment_file=paths["alignment_file"],
            imod_xf=paths["imod_xf"],
            imod_tlt=paths["imod_tlt"],
            size_x_pixels=wv,
            size_y_pixels=hv,
            size_z_pixels=d,
            pixel_spacing_angstroms=result.pixel_spacing_angstroms,
            binning=self.parameters_of(value).binning,
            tilt_axis_angle_degrees=result.tilt_axis_angle_degrees,
            tilt_angle_offset_degrees=result.tilt_angle_offset_degrees,
            sample_thickness_angstroms=None if slab is None else slab.thickness_angstroms,
            z_shift_angstroms=None,
            global_alignment_quality=result.axis_agreement,
            residual_error_mean_angstroms=None if residuals is None else float(residuals.mean()),
            residual_error_sd_angstroms=None if residuals is None else float(residuals.std()),
            tilt_alignments=_alignments(stack, result, request.pixel_size_angstroms),
            backend=result.backend,
            duration_seconds=time.monotonic() - start,
            tomogram_even=paths.get("tomogram_even"),
            tomogram_odd=paths.get("tomogram_odd"),
            half_tomograms_from=result.half_tomograms_from,
            fsc_resolution_angstroms=None if fsc is None else fsc.resolution_angstroms,
        )
        if self.settings.relion_project:
            self._write_relion(value, event)
        return [Output.of(event)]

    def _write_relion(self, value: dict[str, Any], event: TomogramReconstructed) -> None:
        """Add (or rewrite) this series in its session's RELION 5 project (``tiltstream.relion``)."""
        from tiltstream.relion import relion_project_folder, series_tables, write_series

        session = str(value["metadata"]["session_id"])
        _, project = self.output_path(f"{relion_project_folder(session)}/{PIPELINE_STAR}")

        def locate(data_path: Mapping[str, Any]) -> str:
            return str(self.roots.mount(str(data_path["root"])) / str(data_path["path"]))

        write_series(project.parent, series_tables(value, event.to_dict(), locate))


def _kept_indices(stack: TiltStack, result: ReconstructionResult) -> np.ndarray:
    """Stack index of each row of the result's alignment arrays (alignment may drop tilts)."""
    return result.stack_indices if result.stack_indices is not None else np.arange(len(stack.tilts))


def _residuals_angstroms(result: ReconstructionResult, pixel_angstroms: float) -> np.ndarray | None:
    """Alignment residuals (t,) in angstroms, in the order of the tilts used."""
    return None if result.residuals_pixels is None else np.asarray(result.residuals_pixels) * pixel_angstroms


def _alignments(
    stack: TiltStack, result: ReconstructionResult, pixel_angstroms: float
) -> tuple[TiltAlignment, ...]:
    """The per-tilt alignment of every tilt of the stack."""
    shifts_angstroms = result.shifts_xy_pixels * pixel_angstroms
    residuals = _residuals_angstroms(result, pixel_angstroms)
    correlations = result.neighbour_correlations
    row_of = {int(index): row for row, index in enumerate(_kept_indices(stack, result))}
    alignments = []
    for index, raw in enumerate(stack.tilts):
        tilt = ReconstructionTilt.from_dict(raw)
        row = row_of.get(index)
        used = row is not None
        alignments.append(
            TiltAlignment(
                movie_id=tilt.movie_id,
                acquisition_order=tilt.acquisition_order,
                nominal_tilt_angle_degrees=tilt.tilt_angle_degrees,
                refined_tilt_angle_degrees=float(
                    tilt.tilt_angle_degrees if row is None else result.tilt_angles_degrees[row]
                ),
                tilt_axis_angle_degrees=result.tilt_axis_angle_degrees,
                shift_x_angstroms=0.0 if row is None else float(shifts_angstroms[row, 0]),
                shift_y_angstroms=0.0 if row is None else float(shifts_angstroms[row, 1]),
                residual_error_angstroms=None if row is None or residuals is None else float(residuals[row]),
                included=used,
                exclusion_reason=None if used else result.dropped.get(index),
                neighbour_correlation=None
                if row is None or correlations is None
                else float(correlations[row]),
            )
        )
    return tuple(alignments)
