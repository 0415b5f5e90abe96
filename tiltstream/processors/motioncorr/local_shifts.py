"""Local motion: each patch of the movie aligned on its own, on top of the whole-frame shifts.

The frames are first aligned by their whole-frame displacements in Fourier space, on the same
low-frequency band the global estimate used (a Fourier crop: a small movie that holds all the
signal the B-factor envelope leaves). That small movie is cut into overlapping patches on a regular
grid, and every patch of every frame is aligned at once by :func:`estimate_global_shifts` with a
leading patch dimension: coarse peak search, Newton rounds, and the smooth-trajectory prior weighed
by each patch's shot noise (known from the frame's: the crop keeps the noise white). What comes out
is each patch's residual displacement over the frames; :mod:`.local_field` turns it into a field.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tiltstream.processors.motioncorr.fourier import apply_phase_ramps, crop_spectra, spectrum_frequencies
from tiltstream.processors.motioncorr.global_shifts import band_shape, estimate_shifts, frame_noise_power

__all__ = ["LocalShifts", "estimate_local_shifts", "patch_starts"]

#: The patches' band keeps the frequencies where the squared envelope exceeds this: a patch's signal
#: is too weak above it to help (the whole frame's band goes on to 1e-3). Measured: the same local
#: accuracy as the whole band at 0.56 of its area; 1/60 of the envelope and lower lose accuracy.
PATCH_ENVELOPE_FLOOR = 0.02


@dataclass(frozen=True)
class LocalShifts:
    """Residual displacements of a grid of patches, in pixels of the (binned) movie."""

    centres_y_pixels: torch.Tensor  # (py,)
    centres_x_pixels: torch.Tensor  # (px,)
    residual_pixels: torch.Tensor  # (py, px, t, 2) yx, added to the whole-frame displacement, mean 0 over t
    variance_pixels2: torch.Tensor  # (py, px, t, 2) of each residual, from the patch's shot noise


def patch_starts(length: int, count: int) -> tuple[torch.Tensor, int]:
    """First index of ``count`` overlapping patches covering ``length`` at half-patch steps, and the
    (even) patch length: ``(starts (count,), size)``."""
    size = min(length, max(16, 2 * length // (count + 1)))
    size -= size % 2
    step = (length - size) / max(count - 1, 1)
    starts = torch.round(torch.arange(count, dtype=torch.float64) * step).to(torch.int64)
    return starts, size


def _aligned_band(
    spectra: torch.Tensor,  # (t, h, w//2+1)
    shape: tuple[int, int],
    grid: tuple[int, int],
    displacement_pixels: torch.Tensor,  # (t, 2) yx
) -> torch.Tensor:
    """The frames aligned by ``displacement_pixels`` and Fourier-cropped to ``grid``: ``(t, h', w')``."""
    band = crop_spectra(spectra, grid).clone()  # (t, h', w'//2+1)
    ky, kx = spectrum_frequencies(shape, (band.shape[-2], band.shape[-1]), spectra.device)
    aligned: torch.Tensor = torch.fft.irfft2(apply_phase_ramps(band, ky, kx, displacement_pixels), s=grid)
    return aligned


def _cut_patches(
    movie: torch.Tensor,  # (t, h', w')
    starts: tuple[torch.Tensor, torch.Tensor],
    size: tuple[int, int],
) -> torch.Tensor:
    """``(py, px, t, sy, sx)`` patches starting at ``starts`` (rows, columns)."""
    rows = (starts[0][:, None] + torch.arange(size[0]))[:, None, :, None]  # (py, 1, sy, 1)
    columns = (starts[1][:, None] + torch.arange(size[1]))[None, :, None, :]  # (1, px, 1, sx)
    patches = movie[:, rows.to(movie.device), columns.to(movie.device)]  # (t, py, px, sy, sx)
    return patches.permute(1, 2, 0, 3, 4)


def estimate_local_shifts(
    spectra: torch.Tensor,  # (t, h, w//2+1) half spectra of the frames
    shape: tuple[int, int],
    displacement_pixels: torch.Tensor,  # (t, 2) yx whole-frame displacements
    pixel_size_angstroms: float,
    patches_yx: tuple[int, int],
    b_factor_angstroms2: float = 500.0,
    curvature_pixels: float = 0.0,
) -> LocalShifts:
    """Residual displacements of ``patches_yx`` overlapping patches (see the module).

    Parameters
    ----------
    spectra, shape
        ``rfft2`` of the frames and their ``(h, w)``.
    displacement_pixels
        The whole-frame estimate (:func:`estimate_global_shifts`) the patches start from.
    pixel_size_angstroms, b_factor_angstroms2
        As for the whole-frame estimate: they fix the band the patches are cut from.
    patches_yx
        Patches along ``y`` and ``x``; each spans two grid steps.
    curvature_pixels
        The smooth-trajectory prior's expected second difference (px per frame²), 0 for none.
    """
    grid = band_shape(shape, pixel_size_angstroms, b_factor_angstroms2, PATCH_ENVELOPE_FLOOR)
    cell = (shape[0] / grid[0], shape[1] / grid[1])  # movie pixels per band pixel
    movie = _aligned_band(spectra, shape, grid, displacement_pixels)  # (t, h', w')
    (starts_y, size_y), (starts_x, size_x) = (patch_starts(grid[i], patches_yx[i]) for i in range(2))
    patches = torch.fft.rfft2(_cut_patches(movie, (starts_y, starts_x), (size_y, size_x)))
    # white noise of power N per coefficient in the frame: N / (h' w') per band pixel, so N sy sx / (h' w')
    noise = frame_noise_power(spectra) * (size_y * size_x / (grid[0] * grid[1]))  # (t,)
    band_pixel = pixel_size_angstroms * max(cell)
    estimate = estimate_shifts(
        patches,
        (size_y, size_x),
        band_pixel,
        b_factor_angstroms2,
        coarse_rounds=0,  # the whole-frame alignment is the start: a local residual is small
        curvature_pixels=curvature_pixels / max(cell),
        noise_power=noise.expand(*patches.shape[:3]),
    )  # (py, px, t, 2) in band pixels
    scale = torch.tensor(cell, device=spectra.device, dtype=torch.float32)
    return LocalShifts(
        centres_y_pixels=((starts_y + (size_y - 1) / 2) * cell[0]).to(torch.float32),
        centres_x_pixels=((starts_x + (size_x - 1) / 2) * cell[1]).to(torch.float32),
        residual_pixels=estimate.shifts_pixels * scale,
        variance_pixels2=estimate.variance_pixels2 * scale**2,
    )
