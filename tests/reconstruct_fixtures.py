"""Seeded simulated tilt series with known geometry, from the simulator's analytic phantom.

The simulator (``connectors/simulator``) projects a phantom of spheres and shells analytically at any
tilt; here its phase image (no CTF, no ice texture) plus white noise is the micrograph, so that the
reconstruction can be compared with the rendered phantom voxel by voxel. The slab is thin (400 Å)
and carries no gold: fiducial-less alignment follows the specimen's mean height, and a thick slab
or gold beads on both surfaces make "the" shift of a tilt ambiguous by the parallax between layers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from tiltstream.connectors.simulator.imaging import CtfParameters
from tiltstream.connectors.simulator.phantom import Phantom, make_phantom, render_volume
from tiltstream.connectors.simulator.projection import project_phantom
from tiltstream.connectors.simulator.tilted_ctf import apply_tilted_ctf
from tiltstream.streams.metadata import event_id, make_metadata
from tiltstream.streams.samples import sample_event

__all__ = ["SimulatedSeries", "phantom_in_tomogram_frame", "reconstruction_request", "simulate_series"]


@dataclass(frozen=True)
class SimulatedSeries:
    """Micrographs with their truth."""

    phantom: Phantom
    images: np.ndarray  # (t, h, w) float32, in acquisition order
    tilt_angles_degrees: np.ndarray  # (t,)
    specimen_shifts_xy_angstroms: np.ndarray  # (t, 2) displacement of the specimen in each image
    tilt_axis_angle_degrees: float  # from x
    pixel_size_angstroms: float
    defocus_angstroms: float | None = None  # the CTF applied (tilt i: this + 10 i Å, V 300 Å less, 30°)


def simulate_series(
    seed: int = 1,
    *,
    size_pixels: int = 256,
    pixel_size_angstroms: float = 5.0,
    tilt_count: int = 41,
    tilt_axis_angle_degrees: float = 85.0,
    shift_sd_angstroms: float = 60.0,
    thickness_angstroms: float = 400.0,
    noise: float = 1.0,
    tilt_angle_offset_degrees: float = 0.0,
    defocus_angstroms: float | None = None,
) -> SimulatedSeries:
    """A dose-symmetric-free ±60° series: tilts in ascending order, the 0° tilt unshifted.

    ``tilt_angle_offset_degrees`` is the specimen's pre-tilt: each image is projected at the nominal
    angle plus the offset, and the series reports the nominal angles (true = nominal + offset).
    ``defocus_angstroms`` applies the tilted specimen's CTF (``simulator.tilted_ctf``) to each image,
    with the per-tilt values :func:`reconstruction_request` reports.
    """
    rng = np.random.default_rng(seed)
    phantom = make_phantom(
        rng,
        half_extent_angstroms=size_pixels * pixel_size_angstroms * 0.75,
        thickness_angstroms=thickness_angstroms,
        particles_per_square_micrometre=1500,
        vesicles_per_square_micrometre=20,
        gold_beads_per_square_micrometre=0,
    )
    tilts = np.linspace(-60.0, 60.0, tilt_count)
    shifts = rng.normal(0.0, shift_sd_angstroms, (tilt_count, 2))
    shifts[np.argmin(np.abs(tilts))] = 0.0
    images: list[Any] = []  # (h, w) phase images
    for tilt, shift in zip(tilts, shifts, strict=True):
        phase, _ = project_phantom(
            phantom,
            tilt_degrees=float(tilt) + tilt_angle_offset_degrees,
            tilt_axis_angle_degrees=tilt_axis_angle_degrees,
            shape=(size_pixels, size_pixels),
            pixel_size_angstroms=pixel_size_angstroms,
            specimen_shift_angstroms=(float(shift[0]), float(shift[1])),
            voltage_kv=300.0,
            inelastic_mean_free_path_angstroms=3000.0,
            texture_radians=0.0,
            rng=rng,
        )
        if defocus_angstroms is not None:
            phase = apply_tilted_ctf(
                phase,
                pixel_size_angstroms,
                float(tilt) + tilt_angle_offset_degrees,
                tilt_axis_angle_degrees,
                _tilt_ctf(defocus_angstroms, len(images)),
            )
        images.append(phase)
    stack = np.stack(images)  # (t, h, w)
    stack += rng.normal(0.0, noise * float(stack.std()), stack.shape).astype(np.float32)
    return SimulatedSeries(
        phantom, stack, tilts, shifts, tilt_axis_angle_degrees, pixel_size_angstroms, defocus_angstroms
    )


def _tilt_ctf(defocus_angstroms: float, index: int) -> CtfParameters:
    u = defocus_angstroms + 10.0 * index
    return CtfParameters(u, u - 300.0, 30.0, 300.0, 2.7, 0.07, 0.0)


def phantom_in_tomogram_frame(
    series: SimulatedSeries, shape: tuple[int, int, int], voxel_size_angstroms: float, oversample: int = 4
) -> np.ndarray:
    """The phantom rendered in the tomogram's frame (tilt axis along y), box-averaged from a finer grid."""
    angle = math.radians(90.0 - series.tilt_axis_angle_degrees)
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rotated = dataclasses.replace(
        series.phantom, centers_angstroms=series.phantom.centers_angstroms @ rotation.T
    )
    d, h, w = shape
    fine = render_volume(
        rotated, (d * oversample, h * oversample, w * oversample), voxel_size_angstroms / oversample
    )
    binned: np.ndarray = fine.reshape(d, oversample, h, oversample, w, oversample).mean(axis=(1, 3, 5))
    return binned


def _write_image(path: Path, image: np.ndarray, pixel_size_angstroms: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(image.astype(np.float32))
        mrc.voxel_size = pixel_size_angstroms


def _write_tilt(
    series: SimulatedSeries,
    data: Path,
    relative: str,
    index: int,
    halves: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, Any]:
    """Write tilt ``index``'s micrograph (and halves); returns the halves' fields for the request."""
    _write_image(data / "processed" / relative, series.images[index], series.pixel_size_angstroms)
    named: dict[str, Any] = {}
    for field, tag, images in zip(
        ("micrograph_even", "micrograph_odd"), ("_EVN", "_ODD"), halves or (), strict=False
    ):
        named[field] = {"root": "processed", "path": relative.replace(".mrc", f"{tag}.mrc")}
        _write_image(data / "processed" / named[field]["path"], images[index], series.pixel_size_angstroms)
    return named


def _tilt_defocus(defocus_angstroms: float | None, index: int) -> dict[str, Any]:
    """The tilt's CTF fields: none, or U that value plus 10 Å per index, V 300 Å less, at 30°."""
    if defocus_angstroms is None:
        return {"defocus_u_angstroms": None, "defocus_v_angstroms": None, "astigmatism_angle_degrees": None}
    return {
        "defocus_u_angstroms": defocus_angstroms + 10.0 * index,
        "defocus_v_angstroms": defocus_angstroms + 10.0 * index - 300.0,
        "astigmatism_angle_degrees": 30.0,
    }


def reconstruction_request(
    series: SimulatedSeries,
    data: Path,
    *,
    name: str = "Position_1",
    version: int = 1,
    excluded: dict[int, str] | None = None,
    missing: set[int] | None = None,
    binning: int = 4,
    thickness_angstroms: float = 800.0,
    defocus_angstroms: float | None = None,
    halves: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Write the micrographs under ``data/processed`` and return a ReconstructionRequested for them.

    ``halves`` (even, odd), each ``(t, h, w)`` like the micrographs, are written beside them as
    ``_EVN.mrc`` / ``_ODD.mrc`` and named by every tilt whose micrograph is written.

    ``excluded`` marks tilts (by index) excluded with a reason; ``missing`` names tilts whose
    micrograph file is not written (the request still names it). ``defocus_angstroms`` gives every
    tilt a CTF estimate (defocus U that value plus 10 Å per acquisition index, V 300 Å less, 30°).
    """
    excluded = excluded or {}
    if defocus_angstroms is None:
        defocus_angstroms = series.defocus_angstroms
    session = "cm40000-1"
    series_id = f"{session}:{name}"
    tilts = []
    for index, angle in enumerate(series.tilt_angles_degrees):
        relative = f"{session}/motioncorr/{name}_{index:03d}.mrc"
        named = {} if index in (missing or set()) else _write_tilt(series, data, relative, index, halves)
        tilts.append(
            {
                "movie_id": event_id("movie", series_id, index),
                "acquisition_order": index,
                "tilt_angle_degrees": float(angle),
                "micrograph": {"root": "processed", "path": relative},
                "prior_dose_e_per_angstrom2": 3.0 * index,
                "dose_e_per_angstrom2": 3.0,
                **_tilt_defocus(defocus_angstroms, index),
                "excluded": index in excluded,
                "exclusion_reason": excluded.get(index),
                **named,
            }
        )
    value = sample_event("ReconstructionRequested")
    value.update(
        metadata=make_metadata(
            "ReconstructionRequested",
            service="aggregator",
            microscope="m02",
            session_id=session,
            tilt_series_id=series_id,
            key=(version,),
        ),
        request_id=f"{series_id}:v{version}",
        version=version,
        tilts=tilts,
        tilt_axis_angle_degrees=series.tilt_axis_angle_degrees,
        pixel_size_angstroms=series.pixel_size_angstroms,
        binning=binning,
        thickness_angstroms=thickness_angstroms,
        missing_tilt_count=0,
    )
    return value
