"""The library path: teamtomo's torch-motion-correction, on CUDA or CPU.

Whole-frame motion by the library's cross-correlation, refined by :func:`refine_frame_shifts`, frames
resampled along the deformation field by ``tmc.correct_motion``. It is the reference the Fourier
path (:mod:`.builtin`) is benchmarked and tested against, global and local (patch) fit alike.
"""

from __future__ import annotations

import functools
import types

import numpy as np
import torch
import torch_motion_correction as tmc
import torch_motion_correction.estimate_motion_optimizer as _optimizer
import tqdm  # type: ignore[import-untyped]
from torch_fourier_rescale import fourier_rescale_2d

from tiltstream.processors.motioncorr.dose import dose_weighted_sum
from tiltstream.processors.motioncorr.motion_result import motion_result
from tiltstream.processors.motioncorr.result import MotionParameters, MotionResult
from tiltstream.processors.motioncorr.subpixel import refine_frame_shifts

__all__ = ["LIBRARY_BACKEND", "correct_locally", "correct_movie_library", "library_field"]

LIBRARY_BACKEND = f"torch-motion-correction {tmc.__version__}"

# the local fit draws a tqdm progress bar on standard error: not in a service's log
setattr(_optimizer, "tqdm", types.SimpleNamespace(tqdm=functools.partial(tqdm.tqdm, disable=True)))  # noqa: B010


def _even(n: int) -> int:
    return max(32, n - n % 2)


def library_field(
    movie: torch.Tensor,  # (t, h, w) gain-corrected, binned
    pixel: float,
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame displacements
    parameters: MotionParameters,
    device: torch.device,
) -> tmc.DeformationField:
    """The library's deformation field (Å): the whole-frame one, or its local fit with more patches."""
    t, h, w = movie.shape
    with torch.no_grad():
        field = tmc.DeformationField.from_frame_shifts(displacement_pixels, pixel, device=device)
    if parameters.patches_x * parameters.patches_y == 1:
        return field
    local_patch = _even(min(h // parameters.patches_y, w // parameters.patches_x))
    local, _ = tmc.estimate_local_motion(
        movie,
        pixel,
        (t, parameters.patches_y, parameters.patches_x),
        tmc.PatchSamplingConfig(patch_shape=(local_patch, local_patch)),
        initial_deformation_field=field,
        optimization=tmc.OptimizationConfig(early_stopping=True),
        device=device,
    )
    return local


def correct_locally(
    movie: torch.Tensor,  # (t, h, w) gain-corrected, binned
    pixel: float,
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame displacements
    parameters: MotionParameters,
    device: torch.device,
) -> MotionResult:
    """From whole-frame displacements: the local fit (more than one patch), resampling and sums."""
    field = library_field(movie, pixel, displacement_pixels, parameters, device)
    with torch.no_grad():
        aligned = tmc.correct_motion(movie, field, pixel, device=device)  # (t, h, w)
        summed = aligned.sum(0)
        weighted = (
            dose_weighted_sum(
                aligned,
                pixel,
                parameters.dose_per_frame_e_per_angstrom2,
                parameters.prior_dose_e_per_angstrom2,
                parameters.voltage_kv,
            )
            # a dose of 0 is the source's "unknown" (ExposureDose 0: not calibrated): no weighting then
            if parameters.dose_weighting and parameters.dose_per_frame_e_per_angstrom2 > 0
            else None
        )
    return motion_result(summed, weighted, displacement_pixels, pixel, parameters, LIBRARY_BACKEND)


def correct_movie_library(
    frames: np.ndarray,  # (t, h, w)
    gain: np.ndarray | None,  # (h, w)
    parameters: MotionParameters,
    device: torch.device,
) -> MotionResult:
    """Align and sum a movie with the library.

    1. gain-correct, Fourier-crop by ``binning``;
    2. whole-frame motion by cross-correlation (whole pixels), refined to sub-pixel precision
       against the sum of the other frames (:func:`refine_frame_shifts`);
    3. with more than one patch, a smooth local deformation field fitted from the global one;
    4. frames interpolated along the field and summed, plain and dose-weighted.

    The library's field is the displacement of each frame; the shift applied to align it is its
    negative (checked against movies drifted by known shifts in the tests).
    """
    with torch.no_grad():
        movie = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(device)  # (t, h, w)
        if gain is not None:
            movie = movie * torch.from_numpy(gain.astype(np.float32)).to(device)
        pixel = parameters.pixel_size_angstroms
        if parameters.binning > 1:
            movie, (pixel, _) = fourier_rescale_2d(movie, pixel, pixel * parameters.binning)
        coarse = tmc.estimate_global_motion(movie, pixel, device=device)  # whole pixels
        displacement = refine_frame_shifts(movie, coarse.data[:, :, 0, 0].T / pixel, pixel)
    return correct_locally(movie, float(pixel), displacement, parameters, device)
