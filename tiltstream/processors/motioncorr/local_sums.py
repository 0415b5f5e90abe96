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
from tiltstream.processors.motioncorr.frame_halves import half_spectra, halves_from_spectra
from tiltstream.processors.motioncorr.local_field import spline_weights
from tiltstream.processors.motioncorr.local_shifts import LocalShifts
from tiltstream.processors.motioncorr.result import MotionParameters

__all__ = ["displacement_field", "local_sums", "sampling_grid"]

#: Sampling-grid values (two per pixel and frame) held at once.
CHUNK_VALUES = 1 << 26


def sampling_grid(
    local: LocalShifts,
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame
    shape: tuple[int, int],
    frames: slice,
    step_pixels: int = 1,
) -> torch.Tensor:
    """``(c, h, w, 2)`` where each pixel of the chosen frames is sampled from: ``p + field(p)``, as
    ``grid_sample`` takes it (xy in [-1, 1], pixel centres, ``align_corners=False``); of every
    ``step_pixels``-th row and column.

    One matrix product writes it: along ``y`` the patch values are spread to rows (``(c, h, px)``), and a
    right-hand matrix spreads them along ``x`` into interleaved x, y columns, with the pixel's own
    coordinate and the whole-frame shift carried by constant columns.
    """
    h, w = shape
    device = displacement_pixels.device
    y, x = (torch.arange(0, n, step_pixels, dtype=torch.float32) for n in shape)
    rows = spline_weights(local.centres_y_pixels, y).to(device)  # (h', py)
    columns = spline_weights(local.centres_x_pixels, x).to(device)  # (w', px)
    residual = local.residual_pixels[:, :, frames].to(device)  # (py, px, c, 2) yx
    py, px, c, _ = residual.shape
    along_y = (
        (rows @ residual.reshape(py, -1)).reshape(len(y), px, c, 2).permute(2, 0, 3, 1)
    )  # (c, h', 2, px)
    shift = displacement_pixels[frames].to(device)  # (c, 2) yx
    ones = torch.ones(c, len(y), 1, device=device)
    row_y = ((2 * (y.to(device)[None, :] + shift[:, :1]) + 1) / h - 1)[..., None]  # (c, h', 1)
    row_x = (shift[:, None, 1:] * (2 / w)).expand(-1, len(y), 1)  # (c, h', 1)
    left = torch.cat([along_y[:, :, 1] * (2 / w), ones, row_x, along_y[:, :, 0] * (2 / h), row_y], dim=-1)
    right = torch.zeros(2 * px + 3, len(x), 2, device=device)  # rows as the columns of ``left``
    right[:px, :, 0] = columns.T
    right[px, :, 0] = (2 * x.to(device) + 1) / w - 1  # the pixel's own x, normalised
    right[px + 1, :, 0] = 1.0
    right[px + 2 : 2 * px + 2, :, 1] = columns.T
    right[2 * px + 2, :, 1] = 1.0
    return (left @ right.reshape(2 * px + 3, -1)).reshape(c, len(y), len(x), 2)


def displacement_field(
    local: LocalShifts,
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame
    shape: tuple[int, int],
    frames: slice,
    step_pixels: int = 1,
) -> torch.Tensor:
    """``(c, 2, h', w')`` yx displacement of the chosen frames' pixels (every ``step_pixels``-th row
    and column): :func:`sampling_grid` less each pixel's own position, in pixels."""
    grid = sampling_grid(local, displacement_pixels, shape, frames, step_pixels)  # (c, h', w', 2) xy
    y, x = (torch.arange(0, n, step_pixels, dtype=torch.float32, device=grid.device) for n in shape)
    dx = (grid[..., 0] + 1) * (shape[1] / 2) - 0.5 - x  # (c, h', w')
    dy = (grid[..., 1] + 1) * (shape[0] / 2) - 0.5 - y[:, None]
    return torch.stack([dy, dx], dim=1)


def _resample(
    frames: torch.Tensor,  # (c, h, w)
    grid: torch.Tensor,  # (c, h, w, 2) from sampling_grid
) -> torch.Tensor:
    """Aligned frames: pixel ``p`` takes the frame's value at ``p + field(p)``, ``(c, h, w)``."""
    aligned = F.grid_sample(frames[:, None], grid, mode="bicubic", padding_mode="border", align_corners=False)
    return aligned[:, 0]


def local_sums(
    movie: torch.Tensor,  # (t, h, w) gain-corrected, binned
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame
    local: LocalShifts,
    pixel_size_angstroms: float,
    parameters: MotionParameters,
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """Plain and (when asked for and the dose is known) dose-weighted sums, ``(h, w)`` each, and the
    even- and odd-frame sums weighted like the micrograph (when ``parameters.frame_halves``)."""
    t, h, w = movie.shape
    filters = _dose_filters(t, (h, w), pixel_size_angstroms, parameters, movie.device)
    summed = torch.zeros(h, w, device=movie.device)
    even = torch.zeros(h, w // 2 + 1, dtype=torch.complex64, device=movie.device)  # (weighted) spectra
    odd = torch.zeros_like(even)
    spectra_needed = filters is not None or parameters.frame_halves
    chunk = max(1, CHUNK_VALUES // (2 * h * w))
    for start in range(0, t, chunk):
        frames = slice(start, min(t, start + chunk))
        aligned = _resample(movie[frames], sampling_grid(local, displacement_pixels, (h, w), frames))
        summed += aligned.sum(0)
        if spectra_needed:
            spectra = torch.fft.rfft2(aligned)
            if filters is not None:
                spectra.mul_(filters[0][frames])
            chunk_even, chunk_odd = half_spectra(spectra, start)
            even += chunk_even
            odd += chunk_odd
    norm = None if filters is None else filters[1]
    halves = halves_from_spectra(even, odd, (h, w), norm) if parameters.frame_halves else None
    if norm is None:
        return summed, None, halves
    return summed, torch.fft.irfft2((even + odd).mul_(norm), s=(h, w)), halves


def _dose_filters(
    frames: int, shape: tuple[int, int], pixel: float, parameters: MotionParameters, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`dose_filters` when the sum is to be dose-weighted (asked for, and the dose known)."""
    if not parameters.dose_weighting or parameters.dose_per_frame_e_per_angstrom2 <= 0:
        return None  # a dose of 0 is the source's "unknown" (ExposureDose 0: not calibrated)
    return dose_filters(
        frames,
        shape,
        pixel,
        parameters.dose_per_frame_e_per_angstrom2,
        parameters.prior_dose_e_per_angstrom2,
        parameters.voltage_kv,
        device,
    )
