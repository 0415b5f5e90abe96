"""Where each pixel of a box's half spectrum lies: spatial frequency, azimuth, radial bin (CPU, cached)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = ["SpectrumGeometry", "spectrum_geometry"]


@dataclass(frozen=True)
class SpectrumGeometry:
    """Band pixels of an ``rfft2`` half spectrum of a ``box``-sided tile (all flattened ``(n,)``)."""

    index: torch.Tensor  # (n,) flat indices into the (box, box // 2 + 1) half spectrum
    frequency_squared: torch.Tensor  # (n,) 1/Å², float64
    cos2: torch.Tensor  # (n,) cos 2θ, θ the azimuth from the image x axis
    sin2: torch.Tensor  # (n,) sin 2θ
    half_bin: torch.Tensor  # (n,) radius in half pixels of the box's frequency grid
    sector: torch.Tensor  # (n,) which of SECTORS equal azimuth sectors of the half plane
    bins: int  # number of half-pixel radial bins (the largest + 1)


SECTORS = 6


@functools.lru_cache(maxsize=16)
def spectrum_geometry(
    box_pixels: int,
    pixel_size_angstroms: float,
    low_resolution_angstroms: float,
    high_resolution_angstroms: float,
) -> SpectrumGeometry:
    """The pixels between ``low`` and ``high`` resolution, the two axes left out (tile-edge leakage).

    The same for every micrograph of a session, so it is computed once per box and band.
    """
    ky = torch.fft.fftfreq(box_pixels, d=pixel_size_angstroms, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(box_pixels, d=pixel_size_angstroms, dtype=torch.float64)[None, :]
    k2 = (kx**2 + ky**2).flatten()  # (box * (box // 2 + 1),)
    azimuth = torch.atan2(ky.expand(-1, kx.shape[1]), kx.expand(ky.shape[0], -1)).flatten()
    off_axes = ((ky != 0) & (kx != 0)).flatten()
    band = (k2 >= low_resolution_angstroms**-2) & (k2 <= high_resolution_angstroms**-2) & off_axes
    index = torch.nonzero(band).flatten()
    theta = azimuth[index]  # (n,) in (-π/2, π/2]
    half_bin = (2 * torch.sqrt(k2[index]) * box_pixels * pixel_size_angstroms).round().long()
    sector = ((theta + torch.pi / 2) / torch.pi * SECTORS).long().clamp(0, SECTORS - 1)
    return SpectrumGeometry(
        index=index,
        frequency_squared=k2[index],
        cos2=torch.cos(2 * theta),
        sin2=torch.sin(2 * theta),
        half_bin=half_bin,
        sector=sector,
        bins=int(half_bin.max()) + 1,
    )
