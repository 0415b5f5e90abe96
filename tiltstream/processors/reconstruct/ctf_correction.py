"""Phase flipping of tilt images, with the defocus gradient across the tilted specimen.

A tilted slab is not at one defocus: the plane through its centre lies at height
``z = tan(tilt) * d`` above a pixel at signed distance ``d = -x sin(axis) + y cos(axis)`` from the
tilt axis (axis from the image x axis; x, y from the image centre, y along rows), and a point at
height ``z`` is at defocus ``nominal - z`` (closer to focus when higher; the simulator's geometry,
``connectors/simulator/tilted_ctf.py``, derives the same plane from its rotation). Each band of equal
height (``band_angstroms`` wide) is phase-flipped with its own CTF — the image is multiplied in
Fourier space by the sign of ``-(sqrt(1 - A^2) sin(chi) + A cos(chi))`` — and every pixel takes its
own band's result (strip-based correction, as IMOD's ``ctfphaseflip`` does it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tiltstream.processors.ctf.optics import electron_wavelength_angstroms

__all__ = ["SeriesCtf", "phase_flip", "series_ctf", "specimen_heights_angstroms"]


@dataclass(frozen=True)
class SeriesCtf:
    """Per-tilt CTF estimates of the tilts used (stack order) and the optics."""

    defocus_u_angstroms: np.ndarray  # (t,) positive underfocus
    defocus_v_angstroms: np.ndarray  # (t,)
    astigmatism_angle_degrees: np.ndarray  # (t,) from the image x axis
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float


def series_ctf(request: Mapping[str, Any], tilts: Sequence[Mapping[str, Any]]) -> SeriesCtf | None:
    """The CTF of every used tilt from the request, or None when any of them has no estimate."""
    if not tilts or any(t.get("defocus_u_angstroms") is None for t in tilts):
        return None
    u = np.array([float(t["defocus_u_angstroms"]) for t in tilts])
    v = np.array([float(t.get("defocus_v_angstroms") or t["defocus_u_angstroms"]) for t in tilts])
    angle = np.array([float(t.get("astigmatism_angle_degrees") or 0.0) for t in tilts])
    return SeriesCtf(
        u,
        v,
        angle,
        float(request["voltage_kv"]),
        float(request["spherical_aberration_mm"]),
        float(request["amplitude_contrast"]),
    )


def _ctf_sign(
    shape: tuple[int, int], pixel: float, u: float, v: float, angle_degrees: float, ctf: SeriesCtf
) -> torch.Tensor:  # (h, w // 2 + 1)
    h, w = shape
    ky = torch.fft.fftfreq(h, d=pixel, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(w, d=pixel, dtype=torch.float64)[None, :]
    k2 = kx**2 + ky**2
    azimuth = torch.atan2(ky, kx)
    defocus = (u + v) / 2 + (u - v) / 2 * torch.cos(2 * (azimuth - math.radians(angle_degrees)))
    lam = electron_wavelength_angstroms(ctf.voltage_kv)
    cs = ctf.spherical_aberration_mm * 1e7
    chi = math.pi * lam * defocus * k2 - math.pi / 2 * cs * lam**3 * k2**2
    a = ctf.amplitude_contrast
    value = -(math.sqrt(1 - a * a) * torch.sin(chi) + a * torch.cos(chi))
    return torch.where(value < 0, -1.0, 1.0).to(torch.float32)


def specimen_heights_angstroms(
    shape: tuple[int, int], pixel: float, tilt_degrees: float, axis_degrees: float
) -> torch.Tensor:  # (h, w)
    """Height of the tilted specimen's mid-plane above each pixel, in Å."""
    h, w = shape
    y = (torch.arange(h, dtype=torch.float64) - (h - 1) / 2)[:, None] * pixel
    x = (torch.arange(w, dtype=torch.float64) - (w - 1) / 2)[None, :] * pixel
    phi = math.radians(axis_degrees)
    distance = -x * math.sin(phi) + y * math.cos(phi)
    return distance * math.tan(math.radians(tilt_degrees))


def phase_flip(
    images: torch.Tensor,  # (t, h, w) raw (unaligned) tilt images
    pixel_size_angstroms: float,
    tilt_angles_degrees: Sequence[float],
    tilt_axis_angle_degrees: float,  # from the image x axis
    ctf: SeriesCtf,
    band_angstroms: float = 50.0,
) -> torch.Tensor:  # (t, h, w)
    """Phase-flip every tilt with the defocus of each band of the tilted specimen."""
    t, h, w = images.shape
    out = torch.empty_like(images)
    for i in range(t):
        height = specimen_heights_angstroms(
            (h, w), pixel_size_angstroms, float(tilt_angles_degrees[i]), tilt_axis_angle_degrees
        )
        bands = torch.round(height / band_angstroms).to(images.device)
        spectrum = torch.fft.rfft2(images[i] - images[i].mean())
        flipped = torch.zeros((h, w), dtype=images.dtype, device=images.device)
        for band in torch.unique(bands).tolist():
            offset = band * band_angstroms
            sign = _ctf_sign(
                (h, w),
                pixel_size_angstroms,
                float(ctf.defocus_u_angstroms[i]) - offset,
                float(ctf.defocus_v_angstroms[i]) - offset,
                float(ctf.astigmatism_angle_degrees[i]),
                ctf,
            ).to(images.device)
            result = torch.fft.irfft2(spectrum * sign, s=(h, w))
            flipped = torch.where(bands == band, result, flipped)
        out[i] = flipped + images[i].mean()
    return out
