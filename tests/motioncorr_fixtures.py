"""Seeded synthetic movies with a known drift, written as real LZW TIFF or MRC files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import tifffile

from tiltstream.processors.motioncorr import MotionCorrectionSettings

__all__ = ["cpu_settings", "drift_rms_pixels", "synthetic_movie", "with_frame_halves", "write_movie"]


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


def with_frame_halves(monkeypatch: Any) -> None:
    """Make the builtin backend return the even- and odd-frame sums of its global (1 x 1) path.

    Until ``fourier_sums`` makes them itself (one ``frame_half_sums`` call), the result is completed
    here from the same frames, the result's own shifts and dose filters; when the backend already
    returns halves they are kept as they are.
    """
    import torch

    from tiltstream.processors.motioncorr import builtin
    from tiltstream.processors.motioncorr.dose import dose_filters
    from tiltstream.processors.motioncorr.fourier import apply_phase_ramps, spectrum_frequencies
    from tiltstream.processors.motioncorr.frame_halves import frame_half_sums

    original = builtin.correct_movie_builtin

    def correct(frames: np.ndarray, gain: np.ndarray | None, parameters: Any, device: Any) -> Any:
        result = original(frames, gain, parameters, device)
        if result.even_sum is not None or not parameters.frame_halves:
            return result
        assert parameters.patches_x * parameters.patches_y == 1, "the stand-in knows the global path only"
        movie = torch.from_numpy(frames.astype(np.float32) * (1 if gain is None else gain.astype(np.float32)))
        spectra, shape = builtin.binned_spectra(movie, parameters.binning)
        pixel = result.pixel_size_angstroms
        displacement = -torch.from_numpy(result.shifts_angstroms / pixel).flip(1).float()  # (t, 2) yx
        ky, kx = spectrum_frequencies(shape, (spectra.shape[-2], spectra.shape[-1]), spectra.device)
        aligned = apply_phase_ramps(spectra, ky, kx, displacement)
        filters = None
        if result.dose_weighted is not None:
            filters = dose_filters(
                len(frames),
                shape,
                pixel,
                parameters.dose_per_frame_e_per_angstrom2,
                parameters.prior_dose_e_per_angstrom2,
                parameters.voltage_kv,
            )
        even, odd = frame_half_sums(aligned, shape, filters)
        return dataclasses.replace(result, even_sum=even.numpy(), odd_sum=odd.numpy())

    monkeypatch.setattr(builtin, "correct_movie_builtin", correct)
