"""A whole simulated session: PACE positions acquired tilt by tilt, at a controlled rate, with faults."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from tiltstream.connectors.simulator.faults import Fault, FaultKind
from tiltstream.connectors.simulator.gain_reference import (
    GAIN_SUFFIX,
    detector_sensitivity,
    stored_gain_reference,
    write_gain,
)
from tiltstream.connectors.simulator.ground_truth import SeriesTruth, write_ground_truth
from tiltstream.connectors.simulator.mdoc_writer import MdocWriter, serialem_datetime
from tiltstream.connectors.simulator.movie_files import damage_movie, encode_movie, write_progressively
from tiltstream.connectors.simulator.phantom import make_phantom, save_phantom
from tiltstream.connectors.simulator.position import Position, acquire_tilt
from tiltstream.connectors.simulator.schemes import tilt_scheme
from tiltstream.connectors.simulator.settings import SimulatorSettings
from tiltstream.connectors.source.parameters import microscope_zone

__all__ = ["SimulatedMovie", "simulate_session"]

FRAMES_DIR = "frames"
TRUTH_DIR = "ground_truth"


@dataclass(frozen=True)
class SimulatedMovie:
    """A tilt that was just taken: its movie (absent for a ``missing`` fault) and its mdoc section.

    ``completed_at`` is the wall-clock time (``time.time()``) when both were on disk.
    """

    position_name: str
    z_value: int
    movie: Path
    mdoc: Path
    tilt_angle_degrees: float
    completed_at: float
    fault: str | None


def _positions(settings: SimulatorSettings, session_dir: Path, faults: list[Fault]) -> list[Position]:
    grid = math.ceil(math.sqrt(settings.positions))
    phi = math.radians(settings.tilt_axis_angle_degrees)
    normal = np.array([-math.sin(phi), math.cos(phi)])  # perpendicular to the tilt axis
    fov = settings.size_pixels * settings.pixel_size_angstroms
    half_extent = min(fov * 0.75 / math.cos(math.radians(settings.max_tilt_degrees)), 4 * fov)
    session_id = settings.session_id or session_dir.name
    positions = []
    for p in range(1, settings.positions + 1):
        rng = np.random.default_rng([settings.seed, p])
        row, col = divmod(p - 1, grid)
        shift = (
            np.array([col - (grid - 1) / 2, row - (grid - 1) / 2]) * settings.beam_shift_spacing_micrometres
        )
        name = f"Position_{p}"
        phantom = make_phantom(
            rng,
            half_extent_angstroms=half_extent,
            thickness_angstroms=settings.ice_thickness_angstroms * rng.uniform(0.85, 1.15),
            particles_per_square_micrometre=settings.particles_per_square_micrometre,
            vesicles_per_square_micrometre=settings.vesicles_per_square_micrometre,
            gold_beads_per_square_micrometre=settings.gold_beads_per_square_micrometre,
        )
        save_phantom(phantom, session_dir / TRUTH_DIR / f"{name}.phantom.npz")
        mine = {(f.kind, f.tilt) for f in faults if f.position == p}
        cancel = [f.tilt for f in faults if f.position == p and f.kind is FaultKind.CANCEL]
        shuffled = any(f.position == p and f.kind is FaultKind.MDOC_ORDER for f in faults)
        truth = SeriesTruth(
            session_id=session_id,
            position_name=name,
            mdoc=f"{name}.mdoc",
            phantom=f"{TRUTH_DIR}/{name}.phantom.npz",
            scheme=settings.scheme,
            scheme_angles_degrees=[],
            nominal_tilt_axis_angle_degrees=settings.tilt_axis_angle_degrees,
            true_tilt_axis_angle_degrees=settings.tilt_axis_angle_degrees + float(rng.normal(0, 0.7)),
            tilt_angle_offset_degrees=float(rng.normal(0, 0.5)),
            pixel_size_angstroms=settings.pixel_size_angstroms,
            voltage_kv=settings.voltage_kv,
            spherical_aberration_mm=settings.spherical_aberration_mm,
            amplitude_contrast=settings.amplitude_contrast,
            image_size_pixels=settings.size_pixels,
            frames=settings.frames,
            movie_format=settings.movie_format,
            image_shift_micrometres=[float(shift[0]), float(shift[1])],
            mdoc_fields_shuffled=shuffled,
            cancelled_after_tilts=min(cancel) if cancel else None,
        )
        mdoc = MdocWriter(
            session_dir / f"{name}.mdoc",
            {
                "PixelSpacing": f"{settings.pixel_size_angstroms:g}",
                "Voltage": f"{settings.voltage_kv:g}",
                "ImageFile": f"{name}.mrc",
                "ImageSize": f"{settings.size_pixels} {settings.size_pixels}",
                "DataMode": "1",
            },
            _mdoc_titles(settings),
            shuffle_seed=settings.seed * 1000 + p if shuffled else None,
        )
        positions.append(
            Position(
                name=name,
                index=p,
                rng=rng,
                phantom=phantom,
                truth=truth,
                mdoc=mdoc,
                perpendicular_micrometres=float(shift @ normal),
                faults=mine,
            )
        )
    return positions


def _mdoc_titles(settings: SimulatorSettings) -> list[str]:
    """The ``[T = ...]`` lines: SerialEM's carry the tilt axis (unless ``axis_header`` is off); Tomography 5's
    carry a ``TiltAxisAngle`` that is not the axis (about -176 for an 86° axis, as real files do)."""
    started = serialem_datetime(
        settings.start_time.astimezone(microscope_zone(settings.microscope_time_zone))
    )
    if settings.mdoc_writer == "tomo5":
        return [
            f"Tomography: {settings.microscope.upper()}-SIM    {started}",
            f"  TiltAxisAngle = {settings.tilt_axis_angle_degrees - 262.4:.2f}  Binning = 1  SpotSize = 6",
        ]
    titles = [f"SerialEM: Digitized on {settings.microscope} (tiltstream simulator)   {started}"]
    if settings.axis_header:
        titles.append(
            f"    Tilt axis angle = {settings.tilt_axis_angle_degrees:.2f}, binning = 1  spot = 8  camera = 0"
        )
    return titles


def _install_detector(settings: SimulatorSettings, session_dir: Path, positions: list[Position]) -> None:
    """With a gain reference: the detector's sensitivity thins every position's frames, and its gain
    reference is written (turned) as ``frames/CountRef_<session>`` before the first movie."""
    if settings.gain_reference == "none":
        return
    shape = (settings.size_pixels, settings.size_pixels)
    sensitivity = detector_sensitivity(shape, settings.seed)
    session_id = settings.session_id or session_dir.name
    relative = f"{FRAMES_DIR}/CountRef_{session_id}{GAIN_SUFFIX[settings.gain_reference]}"
    stored = stored_gain_reference(sensitivity, settings.gain_rotation_quarter_turns, settings.gain_flip)
    write_gain(session_dir / relative, stored, settings.gain_reference)
    for pos in positions:
        pos.sensitivity = sensitivity
        pos.truth.gain_reference = relative
        pos.truth.gain_rotation_quarter_turns = settings.gain_rotation_quarter_turns
        pos.truth.gain_flip = settings.gain_flip


def simulate_session(
    session_dir: Path,
    settings: SimulatorSettings,
    faults: Iterable[Fault] = (),
    *,
    on_movie: Callable[[SimulatedMovie], None] | None = None,
    stop: threading.Event | None = None,
) -> list[SeriesTruth]:
    """Acquire every position's tilt series into ``session_dir``, PACE-style (all positions per tilt).

    Writes ``Position_N.mdoc`` (progressively), ``frames/Position_N_ZZZ_ANGLE_fractions.{tiff,mrc,eer}``,
    the gain reference ``frames/CountRef_<session>.{mrc,tiff,gain}`` when ``settings.gain_reference`` is
    set, and ``ground_truth/Position_N.json`` (+ ``.phantom.npz``). With ``settings.rate_movies_per_second``
    the movies are paced in wall-clock time (each written over ``write_fraction`` of its interval).

    Returns
    -------
    list[SeriesTruth]
        The ground truth of each position, as written.
    """
    faults = list(faults)
    session_dir.mkdir(parents=True, exist_ok=True)
    positions = _positions(settings, session_dir, faults)
    _install_detector(settings, session_dir, positions)
    angles = tilt_scheme(
        settings.scheme,
        max_tilt_degrees=settings.max_tilt_degrees,
        step_degrees=settings.tilt_step_degrees,
        group=settings.dose_symmetric_group,
        start_degrees=settings.bidirectional_start_degrees,
    )
    for pos in positions:
        pos.truth.scheme_angles_degrees = angles
    rate = settings.rate_movies_per_second
    t0 = time.monotonic()
    count = 0
    for index, angle in enumerate(angles):
        for pos in positions:
            if pos.truth.cancelled_after_tilts is not None and index >= pos.truth.cancelled_after_tilts:
                continue
            takes = 2 if (FaultKind.RETAKE, index) in pos.faults else 1
            for take in range(takes):
                if stop is not None and stop.is_set():
                    return [p.truth for p in positions]
                if rate > 0:
                    time.sleep(max(t0 + count / rate - time.monotonic(), 0))
                moment = settings.start_time + timedelta(seconds=count * settings.seconds_per_tilt)
                tilt, frames, fields = acquire_tilt(
                    pos, settings, index, angle, moment, first_of_retake=take < takes - 1
                )
                movie = session_dir / FRAMES_DIR / tilt.movie.rpartition("/")[2]
                if tilt.fault != FaultKind.MISSING:
                    data = encode_movie(
                        frames,
                        settings.movie_format,
                        settings.pixel_size_angstroms,
                        settings.eer_frames_per_frame,
                        seed=settings.seed * 100_003 + count,
                    )
                    if tilt.fault in (FaultKind.TRUNCATED, FaultKind.CORRUPT):
                        data = damage_movie(data, tilt.fault)  # type: ignore[arg-type]
                    seconds = settings.write_fraction / rate if rate > 0 else 0.0
                    write_progressively(movie, data, chunks=settings.frames, seconds=seconds)
                z = pos.mdoc.add_section(fields)
                if take < takes - 1:
                    tilt.superseded_by_z_value = z + 1
                pos.truth.tilts.append(tilt)
                write_ground_truth(pos.truth, session_dir / TRUTH_DIR / f"{pos.name}.json")
                count += 1
                if on_movie is not None:
                    on_movie(
                        SimulatedMovie(pos.name, z, movie, pos.mdoc.path, angle, time.time(), tilt.fault)
                    )
    for pos in positions:
        pos.truth.finished = True
        write_ground_truth(pos.truth, session_dir / TRUTH_DIR / f"{pos.name}.json")
    return [p.truth for p in positions]
