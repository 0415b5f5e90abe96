"""Seeded synthetic movies with a known drift, written as real LZW TIFF or MRC files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import tifffile

from tiltstream.connectors.simulator.ground_truth import TiltTruth
from tiltstream.connectors.simulator.session import simulate_session
from tiltstream.connectors.simulator.settings import SimulatorSettings
from tiltstream.processors.motioncorr import MotionCorrectionProcessor, MotionCorrectionSettings
from tiltstream.processors.motioncorr.movie_io import read_movie
from tiltstream.processors.runtime import Job
from tiltstream.streams.samples import sample_event

__all__ = [
    "cpu_settings",
    "drift_rms_pixels",
    "movie_event",
    "run_movie",
    "simulated_tilt",
    "synthetic_movie",
    "write_movie",
]


def cpu_settings(tmp_path: Path, **overrides: Any) -> MotionCorrectionSettings:
    """Motion correction on the CPU, whole frames (1 x 1 patches), roots under ``tmp_path``."""
    fields: dict[str, Any] = {
        "data_roots": {"raw": tmp_path / "raw", "processed": tmp_path / "processed"},
        "device": "cpu",
        "patches_x": 1,
        "patches_y": 1,
    }
    (tmp_path / "processed").mkdir(exist_ok=True)
    return MotionCorrectionSettings(**(fields | overrides))


def synthetic_movie(
    seed: int,
    size: int = 256,
    frames: int = 8,
    step_pixels: float = 1.2,
    counts: float = 2.0,
    contrast: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random specimen drifting along a random walk: Poisson counts, ``contrast`` x its std.

    Returns ``(movie (t, h, w) uint16, drift (t, 2) (x, y) pixels)``: frame ``i`` shows the specimen
    displaced by ``drift[i]`` (a Fourier phase shift, so sub-pixel exact).
    """
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    specimen = np.fft.rfft2(rng.standard_normal((size, size))) * np.exp(-(kx**2 + ky**2) / (2 * 0.08**2))
    drift = np.cumsum(rng.normal(0, step_pixels, (frames, 2)), axis=0)  # (t, 2) x, y
    movie = np.empty((frames, size, size), dtype=np.uint16)
    for i, (dx, dy) in enumerate(drift):
        shifted = np.fft.irfft2(specimen * np.exp(-2j * np.pi * (kx * dx + ky * dy)), s=(size, size))
        shifted = shifted / shifted.std()
        movie[i] = rng.poisson(counts * np.clip(1 + contrast * shifted, 0.05, None))
    return movie, drift


def simulated_tilt(
    directory: Path, seed: int, size: int, frames: int, dose_per_frame: float, doming_angstroms: float
) -> tuple[np.ndarray, TiltTruth, float]:
    """One 0° tilt from the simulator (drift, doming, CTF, counting noise): ``(movie, truth, pixel)``."""
    settings = SimulatorSettings(
        session_id=f"tilt-{seed}",
        seed=seed,
        positions=1,
        size_pixels=size,
        frames=frames,
        dose_per_tilt_e_per_angstrom2=dose_per_frame * frames,
        max_tilt_degrees=1.0,
        tilt_step_degrees=3.0,
        doming_angstroms=doming_angstroms,
    )
    tilt = simulate_session(directory, settings)[0].tilts[0]
    with (directory / tilt.movie).open("rb") as stream:
        movie = read_movie(stream, settings.movie_format)
    return movie, tilt, settings.pixel_size_angstroms


def write_movie(path: Path, movie: np.ndarray, pixel_size_angstroms: float) -> None:
    """Write ``movie`` as LZW-compressed TIFF (``.tiff``) or MRC (``.mrc``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mrc":
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(movie.astype(np.float32))
            mrc.voxel_size = pixel_size_angstroms
    else:
        tifffile.imwrite(path, movie, compression="lzw", photometric="minisblack")


def drift_rms_pixels(applied_xy_pixels: np.ndarray, drift_xy_pixels: np.ndarray) -> float:
    """RMS distance between the shifts applied to align and the negated truth, both mean-centred.

    Alignment fixes the trajectory only up to a constant (the reference frame), hence the centring.
    """
    a = applied_xy_pixels - applied_xy_pixels.mean(axis=0)
    b = -(drift_xy_pixels - drift_xy_pixels.mean(axis=0))
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean()))


def movie_event(
    relative: str, movie: np.ndarray, movie_format: str = "tiff", pixel: float = 1.5, **extra: Any
) -> dict[str, Any]:
    """A ``MovieAcquired`` for ``movie`` written at ``raw/relative`` (3 e/Å², ``pixel`` Å)."""
    value = sample_event("MovieAcquired", 1, 3)
    value.update(
        movie={"root": "raw", "path": relative},
        movie_format=movie_format,
        frame_count=movie.shape[0],
        image_height_pixels=movie.shape[1],
        image_width_pixels=movie.shape[2],
        pixel_size_angstroms=pixel,
        dose_e_per_angstrom2=3.0,
        **extra,
    )
    return value


def run_movie(processor: MotionCorrectionProcessor, value: dict[str, Any]) -> dict[str, Any]:
    """The processor's ``MovieMotionCorrected`` value for the ``MovieAcquired`` ``value``."""
    job = Job(value=value, topic="movie.acquired", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(value))
    assert output.record == "MovieMotionCorrected"
    return output.value
