"""The CTF's phase and value, written once for the fast fit (torch, batched over candidates)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Optics", "ctf_squared", "electron_wavelength_angstroms"]


@dataclass(frozen=True)
class Optics:
    """The microscope's constants the CTF model needs."""

    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float


def electron_wavelength_angstroms(voltage_kv: float) -> float:
    """The relativistic electron wavelength at ``voltage_kv`` (0.0197 Å at 300 kV)."""
    volts = voltage_kv * 1e3
    return 12.2643 / math.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def ctf_squared(
    defocus_angstroms: torch.Tensor,  # (c, n) or broadcastable: underfocus positive
    frequency_squared: torch.Tensor,  # (n,) in 1/Å²
    optics: Optics,
) -> torch.Tensor:  # (c, n)
    """``CTF²`` with amplitude contrast ``A``: ``sin²(χ + asin A)``.

    ``χ(k) = π λ Δf k² - π/2 Cs λ³ k⁴``; the squared CTF is what a power spectrum shows.
    """
    wavelength = electron_wavelength_angstroms(optics.voltage_kv)
    cs = optics.spherical_aberration_mm * 1e7
    chi = math.pi * wavelength * defocus_angstroms * frequency_squared
    chi = chi - 0.5 * math.pi * cs * wavelength**3 * frequency_squared**2
    return torch.sin(chi + math.asin(optics.amplitude_contrast)) ** 2
