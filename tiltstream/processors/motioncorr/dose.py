"""Dose weighting of aligned frames (Grant & Grigorieff 2015, eLife 4:e06980)."""

from __future__ import annotations

import torch

__all__ = ["critical_exposure", "dose_filters", "dose_weighted_sum"]

# Critical exposure Ne(k) = A * k**B + C electrons per square angstrom, k in 1/angstrom, at 300 kV.
_A, _B, _C = 0.245, -1.665, 2.81


def critical_exposure(frequency_per_angstrom: torch.Tensor, voltage_kv: float) -> torch.Tensor:
    """Critical exposure per spatial frequency; 200 kV beams damage faster (x 0.8), as MotionCor2 scales."""
    k = frequency_per_angstrom.clamp_min(1e-6)
    ne = _A * k**_B + _C
    return ne * (0.8 if voltage_kv < 250 else 1.0)


def dose_filters(
    frames: int,
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    dose_per_frame_e_per_angstrom2: float,
    prior_dose_e_per_angstrom2: float = 0.0,
    voltage_kv: float = 300.0,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame weights ``q = exp(-N / (2 Ne(k)))`` on the half spectrum of ``shape``, and the
    per-frequency renormalisation ``sqrt(t / sum q**2)``.

    ``N`` is the accumulated dose at the middle of each frame (after ``prior_dose`` from earlier
    tilts). Returns ``(q (t, h, w//2+1), norm (h, w//2+1))``.
    """
    h, w = shape
    fy = torch.fft.fftfreq(h, d=pixel_size_angstroms, device=device)
    fx = torch.fft.rfftfreq(w, d=pixel_size_angstroms, device=device)
    k = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)  # (h, w//2+1) 1/angstrom
    ne = critical_exposure(k, voltage_kv)
    dose = prior_dose_e_per_angstrom2 + dose_per_frame_e_per_angstrom2 * (
        torch.arange(frames, device=device, dtype=torch.float32) + 0.5
    )  # (t,)
    q = torch.exp(-dose[:, None, None] / (2 * ne[None]))  # (t, h, w//2+1)
    return q, torch.sqrt(frames / (q**2).sum(0))


def dose_weighted_sum(
    frames: torch.Tensor,  # (t, h, w) aligned frames
    pixel_size_angstroms: float,
    dose_per_frame_e_per_angstrom2: float,
    prior_dose_e_per_angstrom2: float = 0.0,
    voltage_kv: float = 300.0,
) -> torch.Tensor:
    """Sum of ``frames`` with each frequency weighted by its expected signal after the dose received.

    Each frame's Fourier components are weighted by :func:`dose_filters` ``q``, and the sum is
    renormalised per frequency by ``sqrt(t / sum q**2)`` so that the low frequencies keep the plain
    sum's scale. Returns ``(h, w)``.
    """
    t, h, w = frames.shape
    q, norm = dose_filters(
        t,
        (h, w),
        pixel_size_angstroms,
        dose_per_frame_e_per_angstrom2,
        prior_dose_e_per_angstrom2,
        voltage_kv,
        frames.device,
    )
    spectrum = (torch.fft.rfft2(frames) * q).sum(0) * norm  # (h, w//2+1)
    summed: torch.Tensor = torch.fft.irfft2(spectrum, s=(h, w))  # (h, w)
    return summed
