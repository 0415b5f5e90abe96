"""Plausible example events of every record, for the demo, the benchmarks and the tests.

They describe a small dose-symmetric tilt series (±60° by 3°) on a 300 kV microscope; values are
deterministic functions of ``(series, tilt)`` so that runs are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tiltstream.streams.metadata import event_id, make_metadata

__all__ = ["dose_symmetric_angles", "sample_event"]

_START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
_PIXEL = 1.34
_DOSE = 3.0


def dose_symmetric_angles(
    max_degrees: float = 60.0, step_degrees: float = 3.0, group: int = 2
) -> list[float]:
    """Tilt angles in Hagen's dose-symmetric order: 0, then groups alternating + and -."""
    steps = round(max_degrees / step_degrees)
    plus = [i * step_degrees for i in range(1, steps + 1)]
    order = [0.0]
    for start in range(0, steps, group):
        order += plus[start : start + group]
        order += [-a for a in plus[start : start + group]]
    return order


def _path(root: str, *parts: str) -> dict[str, str]:
    return {"root": root, "path": "/".join(parts)}


def _corrected(series: int, tilt: int, suffix: str) -> dict[str, str]:
    """A motion-correction output: ``<session>/motioncorr/<series folder>/<movie stem><suffix>``."""
    folder = f"cm40000-1_Position_{series}"
    return _path("processed", "cm40000-1", "motioncorr", folder, f"Position_{series}_{tilt + 1:03d}{suffix}")


def _meta(record: str, series: int, tilt: int, service: str, causation: str | None) -> dict[str, Any]:
    return make_metadata(
        record,
        service=service,
        microscope="m02",
        session_id="cm40000-1",
        tilt_series_id=f"cm40000-1:Position_{series}",
        key=(tilt,),
        causation_id=causation,
        occurred_at=_START + timedelta(minutes=5 * series, seconds=12 * tilt),
    )


def sample_event(record: str, series: int = 1, tilt: int = 0) -> dict[str, Any]:
    """An example value of ``record`` (short name) for tilt ``tilt`` of series ``series``."""
    make = _SAMPLES.get(record)
    if make is None:
        raise KeyError(f"no sample for record {record!r}")
    return make(_Context.of(record, series, tilt))


@dataclass(frozen=True)
class _Context:
    """What the samples of one ``(series, tilt)`` share: angle, ids, paths, service fields."""

    record: str
    series: int
    tilt: int
    angles: list[float]
    angle: float
    movie_id: str
    movie_name: str
    micrograph: dict[str, str]
    request_id: str
    tomogram: dict[str, str]
    svc: dict[str, Any]

    @classmethod
    def of(cls, record: str, series: int, tilt: int) -> _Context:
        angles = dose_symmetric_angles()
        angle = angles[tilt % len(angles)]
        return cls(
            record=record,
            series=series,
            tilt=tilt,
            angles=angles,
            angle=angle,
            movie_id=event_id("movie", series, tilt),
            movie_name=f"Position_{series}_{tilt + 1:03d}_{angle:.2f}.tiff",
            micrograph=_corrected(series, tilt, ".mrc"),
            request_id=f"cm40000-1:Position_{series}:v1",
            tomogram=_path("processed", "cm40000-1", "tomograms", f"Position_{series}.v1.mrc"),
            svc={"backend": "tiltstream-sample 0", "duration_seconds": 1.0 + 0.1 * tilt},
        )


def _movie_acquired(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    tilt = c.tilt
    angle = c.angle
    movie_id = c.movie_id
    movie_name = c.movie_name
    return {
        "metadata": _meta(record, series, tilt, "source", None),
        "movie_id": movie_id,
        "movie": _path("raw", "cm40000-1", movie_name),
        "movie_format": "tiff",
        "mdoc": _path("raw", "cm40000-1", f"Position_{series}.mdoc"),
        "gain_reference": None,
        "acquisition_order": tilt,
        "tilt_angle_degrees": angle,
        "tilt_axis_angle_degrees": 85.3,
        "acquired_at": _START + timedelta(minutes=5 * series, seconds=12 * tilt),
        "pixel_size_angstroms": _PIXEL,
        "voltage_kv": 300.0,
        "spherical_aberration_mm": 2.7,
        "amplitude_contrast": 0.07,
        "dose_e_per_angstrom2": _DOSE,
        "prior_dose_e_per_angstrom2": _DOSE * tilt,
        "exposure_time_seconds": 0.6,
        "frame_count": 10,
        "image_width_pixels": 4096,
        "image_height_pixels": 4096,
        "target_defocus_micrometres": -4.0,
        "image_shift_x_micrometres": 0.8 * series,
        "image_shift_y_micrometres": -0.5 * series,
        "position_name": f"Position_{series}",
        "dose_source": "mdoc",
        "mdoc_writer": "serialem",
        "tilt_axis_source": "mdoc",
        "session_parameters_version": 0,
        "gain_rotation_quarter_turns": None,
        "gain_flip": None,
        "eer_group_frames": None,
        "eer_dose_per_output_frame_e_per_angstrom2": None,
        "eer_sampling": None,
        "defect_file": None,
        "frame_halves": None,
    }


def _tilt_series_acquisition_ended(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    angles = c.angles
    return {
        "metadata": _meta(record, series, len(angles), "source", None),
        "ended_at": _START + timedelta(minutes=5 * series, seconds=12 * len(angles)),
        "expected_tilt_count": len(angles),
        "acquired_tilt_count": len(angles),
        "mdoc": _path("raw", "cm40000-1", f"Position_{series}.mdoc"),
        "reason": "completed",
        "tilt_axis_angle_degrees": 85.3,
        "pixel_size_angstroms": _PIXEL,
        "dose_known": True,
        "session_parameters_version": 0,
    }


def _session_parameters_set(c: _Context) -> dict[str, Any]:
    return {
        "metadata": {**_meta(c.record, c.series, c.tilt, "source", None), "tilt_series_id": "cm40000-1"},
        "version": c.tilt + 1,
        "set_by": "operator",
        "tilt_axis_angle_degrees": None,
        "pixel_size_angstroms": None,
        "voltage_kv": 300.0,
        "spherical_aberration_mm": None,
        "dose_per_tilt_e_per_angstrom2": 3.0,
        "dose_per_frame_e_per_angstrom2": None,
        "time_zone": "Europe/London",
        "gain_reference": None,
        "gain_rotation_quarter_turns": 1,
        "gain_flip": 2,
        "eer_group_frames": None,
        "eer_dose_per_output_frame_e_per_angstrom2": 0.25,
        "eer_sampling": 1,
        "defect_file": "defects.txt",
        "frame_halves": True,
    }


def _movie_motion_corrected(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    tilt = c.tilt
    angle = c.angle
    movie_id = c.movie_id
    micrograph = c.micrograph
    svc = c.svc
    shifts = [
        {"frame_index": i, "shift_x_angstroms": 1.5 * math.sin(i / 3), "shift_y_angstroms": -0.8 * i}
        for i in range(10)
    ]
    return {
        "metadata": _meta(record, series, tilt, "motioncorr", movie_id),
        "movie_id": movie_id,
        "acquisition_order": tilt,
        "tilt_angle_degrees": angle,
        "micrograph": micrograph,
        "micrograph_not_dose_weighted": None,
        "thumbnail": _corrected(series, tilt, ".png"),
        "drift_plot": None,
        "pixel_size_angstroms": _PIXEL,
        "total_motion_angstroms": 9.1,
        "average_motion_per_frame_angstroms": 0.91,
        "early_motion_angstroms": 3.2,
        "late_motion_angstroms": 5.9,
        "frame_shifts": shifts,
        "first_frame": 0,
        "last_frame": 9,
        "dose_per_frame_e_per_angstrom2": _DOSE / 10,
        "dose_weighted": True,
        "patches_x": 5,
        "patches_y": 5,
        "binning": 1,
        "voltage_kv": 300.0,
        "spherical_aberration_mm": 2.7,
        "amplitude_contrast": 0.07,
        "target_defocus_micrometres": -4.0,
        # the dose over 0.6 s on 1.34 Å pixels, fewer through the thicker path at a tilt
        "mean_counts_per_pixel_per_second": round(_DOSE * _PIXEL**2 / 0.6 * math.cos(math.radians(angle)), 3),
        "micrograph_even": _corrected(series, tilt, "_EVN.mrc"),
        "micrograph_odd": _corrected(series, tilt, "_ODD.mrc"),
        **svc,
    }


def _ctf_estimated(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    tilt = c.tilt
    angle = c.angle
    movie_id = c.movie_id
    micrograph = c.micrograph
    svc = c.svc
    defocus = 40000.0 + 150.0 * math.sin(math.radians(angle)) * 100
    return {
        "metadata": _meta(record, series, tilt, "ctf", movie_id),
        "movie_id": movie_id,
        "acquisition_order": tilt,
        "tilt_angle_degrees": angle,
        "micrograph": micrograph,
        "defocus_u_angstroms": defocus + 250.0,
        "defocus_v_angstroms": defocus - 250.0,
        "astigmatism_angstroms": 500.0,
        "astigmatism_angle_degrees": 32.5,
        "fit_resolution_angstroms": 6.5 + abs(angle) / 10,
        "fit_score": 0.12,
        "phase_shift_degrees": None,
        "power_spectrum": None,
        "box_size_pixels": 512,
        "min_resolution_angstroms": 30.0,
        "max_resolution_angstroms": 5.0,
        "sample_thickness_angstroms": None,
        **svc,
    }


def _reconstruction_requested(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    angles = c.angles
    request_id = c.request_id
    tilts = [
        {
            "movie_id": event_id("movie", series, i),
            "acquisition_order": i,
            "tilt_angle_degrees": a,
            "micrograph": _corrected(series, i, ".mrc"),
            "prior_dose_e_per_angstrom2": _DOSE * i,
            "dose_e_per_angstrom2": _DOSE,
            "defocus_u_angstroms": 40250.0,
            "defocus_v_angstroms": 39750.0,
            "astigmatism_angle_degrees": 32.5,
            "excluded": abs(a) > 57,
            "exclusion_reason": "ctf-fit" if abs(a) > 57 else None,
            "micrograph_even": _corrected(series, i, "_EVN.mrc"),
            "micrograph_odd": _corrected(series, i, "_ODD.mrc"),
        }
        for i, a in enumerate(angles)
    ]
    return {
        "metadata": _meta(record, series, 0, "aggregator", None),
        "request_id": request_id,
        "version": 1,
        "reason": "complete",
        "tilts": tilts,
        "tilt_axis_angle_degrees": 85.3,
        "pixel_size_angstroms": _PIXEL,
        "voltage_kv": 300.0,
        "spherical_aberration_mm": 2.7,
        "amplitude_contrast": 0.07,
        "binning": 4,
        "thickness_angstroms": 3000.0,
        "missing_tilt_count": 0,
    }


def _tomogram_reconstructed(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    angles = c.angles
    request_id = c.request_id
    tomogram = c.tomogram
    svc = c.svc
    alignments = [
        {
            "movie_id": event_id("movie", series, i),
            "acquisition_order": i,
            "nominal_tilt_angle_degrees": a,
            "refined_tilt_angle_degrees": a + 0.3,
            "tilt_axis_angle_degrees": 85.1,
            "shift_x_angstroms": 12.0 * math.sin(i),
            "shift_y_angstroms": -8.0 * math.cos(i),
            "residual_error_angstroms": None,
            "included": True,
            "exclusion_reason": None,
            "neighbour_correlation": 0.42,
        }
        for i, a in enumerate(angles)
    ]
    return {
        "metadata": _meta(record, series, 0, "reconstruct", request_id),
        "request_id": request_id,
        "version": 1,
        "tomogram": tomogram,
        "aligned_stack": _path("processed", "cm40000-1", "tomograms", f"Position_{series}.v1.aligned.mrc"),
        "central_slice": None,
        "xy_projection": None,
        "xz_projection": None,
        "alignment_plot": None,
        "alignment_file": None,
        "imod_xf": None,
        "imod_tlt": None,
        "size_x_pixels": 1024,
        "size_y_pixels": 1024,
        "size_z_pixels": 560,
        "pixel_spacing_angstroms": 4 * _PIXEL,
        "binning": 4,
        "tilt_axis_angle_degrees": 85.1,
        "tilt_angle_offset_degrees": 0.3,
        "sample_thickness_angstroms": None,
        "z_shift_angstroms": None,
        "global_alignment_quality": 0.8,
        "residual_error_mean_angstroms": None,
        "residual_error_sd_angstroms": None,
        "tilt_alignments": alignments,
        "tomogram_even": _path("processed", "cm40000-1", "tomograms", f"Position_{series}.v1_even.mrc"),
        "tomogram_odd": _path("processed", "cm40000-1", "tomograms", f"Position_{series}.v1_odd.mrc"),
        "half_tomograms_from": "frames",
        "fsc_resolution_angstroms": 42.5,
        **svc,
    }


def _tomogram_denoised(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    request_id = c.request_id
    tomogram = c.tomogram
    svc = c.svc
    return {
        "metadata": _meta(record, series, 0, "denoise", request_id),
        "request_id": request_id,
        "version": 1,
        "tomogram": tomogram,
        "denoised_tomogram": _path(
            "processed", "cm40000-1", "tomograms", f"Position_{series}.v1.denoised.mrc"
        ),
        "central_slice": None,
        "model": "unet-3d-10a",
        "patch_size_pixels": 96,
        "padding_pixels": 48,
        **svc,
    }


def _processing_failed(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    tilt = c.tilt
    movie_id = c.movie_id
    movie_name = c.movie_name
    return {
        "metadata": _meta(record, series, tilt, "motioncorr", movie_id),
        "stage": "motioncorr",
        "subject_id": movie_id,
        "movie_id": movie_id,
        "request_id": None,
        "error_class": "CorruptInputError",
        "error_message": f"{movie_name}: truncated TIFF (frame 7 of 10 missing)",
        "failure_kind": "permanent",
        "attempts": 1,
        "input_topic": "tiltstream.movie.acquired",
        "input_partition": 0,
        "input_offset": 42,
    }


def _tilt_series_status(c: _Context) -> dict[str, Any]:
    record = c.record
    series = c.series
    tilt = c.tilt
    return {
        "metadata": _meta(record, series, tilt, "aggregator", None),
        "state": "acquiring",
        "expected_tilts": None,
        "acquired_tilts": tilt + 1,
        "corrected_tilts": tilt,
        "ctf_tilts": max(tilt - 1, 0),
        "failed_tilts": 0,
        "excluded_tilts": 0,
        "latest_version": 0,
        "latest_request_id": None,
        "first_tilt_at": _START + timedelta(minutes=5 * series),
        "last_tilt_at": _START + timedelta(minutes=5 * series, seconds=12 * tilt),
        "acquisition_ended_at": None,
        "requested_at": None,
        "reconstructed_at": None,
        "denoised_at": None,
        "tomogram": None,
        "denoised_tomogram": None,
        "message": None,
    }


_SAMPLES: dict[str, Callable[[_Context], dict[str, Any]]] = {
    "MovieAcquired": _movie_acquired,
    "TiltSeriesAcquisitionEnded": _tilt_series_acquisition_ended,
    "MovieMotionCorrected": _movie_motion_corrected,
    "CtfEstimated": _ctf_estimated,
    "ReconstructionRequested": _reconstruction_requested,
    "TomogramReconstructed": _tomogram_reconstructed,
    "TomogramDenoised": _tomogram_denoised,
    "ProcessingFailed": _processing_failed,
    "TiltSeriesStatus": _tilt_series_status,
    "SessionParametersSet": _session_parameters_set,
}
