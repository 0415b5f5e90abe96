"""The builtin backend: whole-frame motion and sums in Fourier space; local motion by patches.

For a global (1 x 1 patch) model the frames are transformed once; shifts are estimated on a
low-frequency band of those spectra (:func:`estimate_global_shifts`), the frames aligned by
separable phase ramps, and the plain and dose-weighted sums formed in Fourier space: two inverse
FFTs, no resampling. Binning is a crop of the same spectra. With more than one patch, patches of
the same band are aligned on top of the whole-frame shifts (:func:`estimate_local_shifts`), their
residuals smoothed into a field (:func:`smooth_local_shifts`) and every frame resampled along it
once (:func:`local_sums`). The library's path (global and local) stays in :mod:`.library` as the
reference.
"""

from __future__ import annotations

import numpy as np
import torch

from tiltstream.processors.motioncorr.dose import dose_filters
from tiltstream.processors.motioncorr.fourier import apply_phase_ramps, crop_spectra, spectrum_frequencies
from tiltstream.processors.motioncorr.frame_halves import frame_half_sums, half_spectra, halves_from_spectra
from tiltstream.processors.motioncorr.global_shifts import estimate_global_shifts
from tiltstream.processors.motioncorr.local_field import smooth_local_shifts
from tiltstream.processors.motioncorr.local_shifts import LocalShifts, estimate_local_shifts
from tiltstream.processors.motioncorr.local_sums import local_sums
from tiltstream.processors.motioncorr.motion_result import motion_result
from tiltstream.processors.motioncorr.result import MotionParameters, MotionResult

__all__ = [
    "FOURIER_BACKEND",
    "LOCAL_BACKEND",
    "binned_spectra",
    "correct_movie_builtin",
    "fourier_sums",
    "local_motion",
]

FOURIER_BACKEND = "tiltstream-fourier-global"
LOCAL_BACKEND = "tiltstream-patch-local"


def binned_spectra(
    movie: torch.Tensor,  # (t, H, W)
    binning: int,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Half spectra of the frames Fourier-cropped by ``binning`` (mean kept); ``((t, h, w//2+1), (h, w))``."""
    spectra = torch.fft.rfft2(movie)  # (t, H, W//2+1)
    if binning == 1:
        return spectra, (movie.shape[-2], movie.shape[-1])
    shape = (movie.shape[-2] // binning, movie.shape[-1] // binning)
    scale = shape[0] * shape[1] / (movie.shape[-2] * movie.shape[-1])
    return crop_spectra(spectra, shape) * scale, shape


def fourier_sums(
    spectra: torch.Tensor,  # (t, h, w//2+1), consumed (aligned in place)
    shape: tuple[int, int],
    displacement_pixels: torch.Tensor,  # (t, 2) yx
    pixel: float,
    parameters: MotionParameters,
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """Plain and (when asked for and the dose is known) dose-weighted sums of the aligned frames, (h, w),
    and the even- and odd-frame sums weighted like the micrograph (when ``parameters.frame_halves``)."""
    ky, kx = spectrum_frequencies(shape, (spectra.shape[-2], spectra.shape[-1]), spectra.device)
    aligned = apply_phase_ramps(spectra, ky, kx, displacement_pixels)
    summed = torch.fft.irfft2(aligned.sum(0), s=shape)
    # a dose of 0 is the source's "unknown" (ExposureDose 0: not calibrated): no weighting then
    if not parameters.dose_weighting or parameters.dose_per_frame_e_per_angstrom2 <= 0:
        return summed, None, frame_half_sums(aligned, shape) if parameters.frame_halves else None
    q, norm = dose_filters(
        len(aligned),
        shape,
        pixel,
        parameters.dose_per_frame_e_per_angstrom2,
        parameters.prior_dose_e_per_angstrom2,
        parameters.voltage_kv,
        spectra.device,
    )
    even, odd = half_spectra(aligned.mul_(q))
    weighted = torch.fft.irfft2((even + odd).mul_(norm), s=shape)
    halves = halves_from_spectra(even, odd, shape, norm) if parameters.frame_halves else None
    return summed, weighted, halves


def correct_movie_builtin(
    frames: np.ndarray,  # (t, h, w)
    gain: np.ndarray | None,  # (h, w)
    parameters: MotionParameters,
    device: torch.device,
) -> MotionResult:
    """Align and sum a movie: whole-frame motion, and local motion with more than one patch.

    The shifts returned are those applied to align each frame (x, y), the negative of the
    displacement each frame shows (checked against movies drifted by known shifts in the tests).
    """
    with torch.no_grad():
        movie = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(device)  # (t, H, W)
        if gain is not None:
            movie = movie * torch.from_numpy(gain.astype(np.float32)).to(device)
        spectra, shape = binned_spectra(movie, parameters.binning)  # (t, h, w//2+1)
        pixel = parameters.pixel_size_angstroms * parameters.binning
        displacement = estimate_global_shifts(
            spectra, shape, pixel, curvature_pixels=parameters.drift_curvature_angstroms / pixel
        )  # (t, 2) yx pixels
        if parameters.patches_x * parameters.patches_y == 1:
            summed, weighted, halves = fourier_sums(spectra, shape, displacement, pixel, parameters)
            return motion_result(summed, weighted, displacement, pixel, parameters, FOURIER_BACKEND, halves)
        local = local_motion(spectra, shape, displacement, parameters)
        if parameters.binning > 1:
            movie = torch.fft.irfft2(spectra, s=shape)  # (t, h, w)
        del spectra  # the resampling works on the frames: the spectra's memory goes first
        summed, weighted, halves = local_sums(movie, displacement, local, pixel, parameters)
    return motion_result(summed, weighted, displacement, pixel, parameters, LOCAL_BACKEND, halves)


def local_motion(
    spectra: torch.Tensor,  # (t, h, w//2+1) binned
    shape: tuple[int, int],
    displacement: torch.Tensor,  # (t, 2) yx pixels, whole-frame
    parameters: MotionParameters,
) -> LocalShifts:
    """The smoothed residuals of ``patches_y x patches_x`` patches on top of ``displacement``."""
    pixel = parameters.pixel_size_angstroms * parameters.binning
    local = estimate_local_shifts(
        spectra,
        shape,
        displacement,
        pixel,
        (parameters.patches_y, parameters.patches_x),
        curvature_pixels=parameters.drift_curvature_angstroms / pixel,
    )
    return smooth_local_shifts(local, parameters.local_curvature_angstroms / pixel)
