"""The frames resampled along a smooth deformation field and summed, plain and dose-weighted.

The field of each frame is the whole-frame displacement plus the patches' smoothed residuals spread
over the frame by cubic splines (:func:`~.local_field.spline_weights`, one small matrix per axis).
Each frame is resampled once, bicubically, along the whole displacement (so the interpolation
happens once, not once for the drift and once more for the residual); the plain sum is formed in
real space and the dose-weighted one from the resampled frames' spectra. Frames go in chunks
sized to keep the sampling grids within a fixed budget of memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tiltstream.processors.motioncorr.dose import dose_filters
from tiltstream.processors.motioncorr.local_field import spline_weights
from tiltstream.processors.motioncorr.local_shifts import LocalShifts
from tiltstream.processors.motioncorr.result import MotionParameters

__all__ = ["displacement_field", "local_sums"]

#: Sampling-grid values (two per pixel and frame) held at once.
CHUNK_VALUES = 1 << 26


def displacement_field(
    local: LocalShifts,
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame
    shape: tuple[int, int],
    frames: slice,
) -> torch.Tensor:
    """``(c, 2, h, w)`` yx displacement of every pixel in the chosen frames."""
    device = displacement_pixels.device
    rows = spline_weights(local.centres_y_pixels, torch.arange(shape[0])).to(device)  # (h, py)
    columns = spline_weights(local.centres_x_pixels, torch.arange(shape[1])).to(device)  # (w, px)
    residual = local.residual_pixels[:, :, frames].to(device)  # (py, px, c, 2)
    py, px, c, _ = residual.shape
    along_y = (
        (rows @ residual.reshape(py, -1)).reshape(shape[0], px, c, 2).permute(2, 3, 0, 1)
    )  # (c, 2, h, px)
    field = along_y @ columns.T  # (c, 2, h, w)
    return field.add_(displacement_pixels[frames, :, None, None])


def _resample(
    frames: torch.Tensor,  # (c, h, w)
    field: torch.Tensor,  # (c, 2, h, w) yx displacement
) -> torch.Tensor:
    """Aligned frames: pixel ``p`` takes the frame's value at ``p + field(p)``, ``(c, h, w)``."""
    h, w = frames.shape[-2:]
    y = torch.arange(h, device=frames.device, dtype=torch.float32)[:, None]
    x = torch.arange(w, device=frames.device, dtype=torch.float32)[None, :]
    grid = torch.stack(
        [(x + field[:, 1]).mul_(2 / w).add_(1 / w - 1), (y + field[:, 0]).mul_(2 / h).add_(1 / h - 1)], dim=-1
    )  # (c, h, w, 2) xy in [-1, 1], align_corners=False
    aligned = F.grid_sample(frames[:, None], grid, mode="bicubic", padding_mode="border", align_corners=False)
    return aligned[:, 0]


def local_sums(
    movie: torch.Tensor,  # (t, h, w) gain-corrected, binned
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame
    local: LocalShifts,
    pixel_size_angstroms: float,
    parameters: MotionParameters,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Plain and (when asked for and the dose is known) dose-weighted sums, ``(h, w)`` each."""
    t, h, w = movie.shape
    weighting = parameters.dose_weighting and parameters.dose_per_frame_e_per_angstrom2 > 0
    filters = None
    if weighting:
        filters = dose_filters(
            t,
            (h, w),
            pixel_size_angstroms,
            parameters.dose_per_frame_e_per_angstrom2,
            parameters.prior_dose_e_per_angstrom2,
            parameters.voltage_kv,
            movie.device,
        )
    summed = torch.zeros(h, w, device=movie.device)
    spectrum = torch.zeros(h, w // 2 + 1, dtype=torch.complex64, device=movie.device)
    chunk = max(1, CHUNK_VALUES // (2 * h * w))
    for start in range(0, t, chunk):
        frames = slice(start, min(t, start + chunk))
        aligned = _resample(movie[frames], displacement_field(local, displacement_pixels, (h, w), frames))
        summed += aligned.sum(0)
        if filters is not None:
            spectrum += (torch.fft.rfft2(aligned) * filters[0][frames]).sum(0)
    if filters is None:
        return summed, None
    return summed, torch.fft.irfft2(spectrum * filters[1], s=(h, w))
