"""The averaged power spectrum of a micrograph from overlapping tiles, in one batched FFT."""

from __future__ import annotations

import torch

__all__ = ["averaged_power_spectrum"]


def averaged_power_spectrum(
    micrograph: torch.Tensor,  # (h, w)
    box_pixels: int,
) -> torch.Tensor:  # (box, box // 2 + 1), not centred
    """The mean ``|FFT|²`` of ``box``-sided tiles that overlap by half (Welch's periodogram).

    Each tile loses its mean and is tapered at its edges (a cosine over an eighth of the box), so
    the tile borders do not draw a cross through the spectrum. ``box`` must not exceed the short side.
    """
    step = box_pixels // 2
    tiles = micrograph.unfold(0, box_pixels, step).unfold(1, box_pixels, step)  # (ty, tx, box, box)
    tiles = tiles.reshape(-1, box_pixels, box_pixels)  # (n, box, box), a copy
    taper = _edge_taper(box_pixels, micrograph.device)  # (box,)
    tiles.sub_(tiles.mean(dim=(-2, -1), keepdim=True)).mul_(taper[:, None] * taper[None, :])
    spectra = torch.fft.rfft2(tiles)  # (n, box, box // 2 + 1)
    power: torch.Tensor = (spectra.real**2 + spectra.imag**2).mean(0)
    return power


def _edge_taper(box_pixels: int, device: torch.device) -> torch.Tensor:  # (box,)
    edge = max(1, box_pixels // 8)
    ramp = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(edge, device=device) + 0.5) / edge)
    taper = torch.ones(box_pixels, device=device)
    taper[:edge] = ramp
    taper[-edge:] = ramp.flip(0)
    return taper
