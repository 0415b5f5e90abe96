"""Fourier-space tools of the global motion path: cropping spectra, separable phase ramps.

A whole-frame shift is a phase ramp ``exp(2 pi i (ky dy + kx dx))``, the outer product of a 1-D term
along ``y`` and one along ``x``: it is applied to a ``(t, h, w//2+1)`` stack of half spectra with two
broadcast multiplications and no full-size exponential.
"""

from __future__ import annotations

import torch

__all__ = ["apply_phase_ramps", "crop_spectra", "spectrum_frequencies"]


def spectrum_frequencies(
    shape: tuple[int, int], spectrum_shape: tuple[int, int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequencies (cycles per pixel of an image of ``shape``) of the rows and columns of a half
    spectrum of ``spectrum_shape`` cropped from that image's (see :func:`crop_spectra`).

    Returns ``(ky (rows,), kx (columns,))``.
    """
    rows, columns = spectrum_shape
    ky = torch.fft.fftfreq(rows, device=device) * rows / shape[0]  # (rows,)
    kx = torch.arange(columns, device=device, dtype=torch.float32) / shape[1]  # (columns,)
    return ky, kx


def crop_spectra(
    spectra: torch.Tensor,  # (..., h, w//2+1) half spectra
    shape: tuple[int, int],
) -> torch.Tensor:
    """The lowest frequencies of ``spectra``: the half spectra of images of ``shape`` (h', w').

    Keeps the first ``ceil(h'/2)`` and last ``floor(h'/2)`` rows and the first ``w'//2+1`` columns: a
    Fourier crop (binning), or a low-frequency band to work on. Values are not rescaled; multiply by
    ``h' w' / (h w)`` to keep the real-space mean.
    """
    rows, columns = shape
    top = (rows + 1) // 2
    bottom = rows // 2
    kept = spectra[..., : columns // 2 + 1]
    if bottom == 0:
        return kept[..., :top, :]
    return torch.cat([kept[..., :top, :], kept[..., -bottom:, :]], dim=-2)  # (..., h', w'//2+1)


def apply_phase_ramps(
    spectra: torch.Tensor,  # (..., t, rows, columns) half spectra, changed in place
    ky: torch.Tensor,  # (rows,) cycles per pixel
    kx: torch.Tensor,  # (columns,)
    shifts_pixels: torch.Tensor,  # (..., t, 2) yx: each frame is moved back by these
) -> torch.Tensor:
    """``spectra`` multiplied by ``exp(2 pi i (ky dy + kx dx))`` per frame, in place; returned.

    A frame that shows the specimen displaced by ``(dy, dx)`` is aligned by this ramp. Leading
    dimensions (e.g. patches) are batched.
    """
    turns = 2 * torch.pi * shifts_pixels.to(torch.float32)  # (..., t, 2)
    angle_y = turns[..., :1] * ky  # (..., t, rows)
    angle_x = turns[..., 1:] * kx  # (..., t, columns)
    ramp_y = torch.polar(torch.ones_like(angle_y), angle_y)
    ramp_x = torch.polar(torch.ones_like(angle_x), angle_x)
    spectra.mul_(ramp_y[..., :, None]).mul_(ramp_x[..., None, :])
    return spectra
