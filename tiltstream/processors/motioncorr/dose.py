"""Dose weighting of aligned frames (Grant & Grigorieff 2015, eLife 4:e06980)."""

from __future__ import annotations

import torch

__all__ = ["critical_exposure", "dose_weighted_sum"]

# Critical exposure Ne(k) = A * k**B + C electrons per square angstrom, k in 1/angstrom, at 300 kV.
_A, _B, _C = 0.245, -1.665, 2.81


def critical_exposure(frequency_per_angstrom: torch.Tensor, voltage_kv: float) -> torch.Tensor:
    """Critical exposure per spatial frequency; 200 kV beams damage faster (x 0.8), as MotionCor2 scales."""
    k = frequency_per_angstrom.clamp_min(1e-6)
    ne = _A * k**_B + _C
    return ne * (0.8 if voltage_kv < 250 else 1.0)


def dose_weighted_sum(
    frames: torch.Tensor,  # (t, h, w) aligned frames
    pixel_size_angstroms: float,
    dose_per_frame_e_per_angstrom2: float,
    prior_dose_e_per_angstrom2: float = 0.0,
    voltage_kv: float = 300.0,
) -> torch.Tensor:
    """Sum of ``frames`` with each frequency weighted by its expected signal after the dose received.

    Each frame's Fourier components are weighted by ``q = exp(-N / (2 Ne(k)))``, with ``N`` the
    accumulated dose at the middle of the frame (after ``prior_dose`` from earlier tilts); the sum is
    renormalised per frequency by ``sqrt(t / sum q**2)`` so that the low frequencies keep the plain
    sum's scale. Returns ``(h, w)``.
    """
    t, h, w = frames.shape
    fy = torch.fft.fftfreq(h, d=pixel_size_angstroms, device=frames.device)
    fx = torch.fft.rfftfreq(w, d=pixel_size_angstroms, device=frames.device)
    k = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)  # (h, w//2+1) 1/angstrom
    ne = critical_exposure(k, voltage_kv)
    dose = prior_dose_e_per_angstrom2 + dose_per_frame_e_per_angstrom2 * (
        torch.arange(t, device=frames.device, dtype=frames.dtype) + 0.5
    )  # (t,)
    q = torch.exp(-dose[:, None, None] / (2 * ne[None]))  # (t, h, w//2+1)
    spectrum = (torch.fft.rfft2(frames) * q).sum(0)  # (h, w//2+1)
    spectrum = spectrum * torch.sqrt(t / (q**2).sum(0))
    summed: torch.Tensor = torch.fft.irfft2(spectrum, s=(h, w))  # (h, w)
    return summed
