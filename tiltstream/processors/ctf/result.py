"""What a CTF backend returns (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CtfParameters", "CtfResult"]


@dataclass(frozen=True)
class CtfParameters:
    """Optics and search ranges of one fit."""

    pixel_size_angstroms: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float
    box_size_pixels: int
    min_resolution_angstroms: float
    max_resolution_angstroms: float
    min_defocus_angstroms: float
    max_defocus_angstroms: float
    defocus_step_angstroms: float = 500.0
    #: Where the microscope aimed (underfocus positive), when known: the own fit searches only within
    #: ``target_window_angstroms`` of it (inside the min-max range), where a weak spectrum's false peaks
    #: far away cannot win.
    target_defocus_angstroms: float | None = None
    target_window_angstroms: float = 25000.0


@dataclass(frozen=True)
class CtfResult:
    """A fitted CTF; defoci positive for underfocus, ``defocus_u >= defocus_v``."""

    defocus_u_angstroms: float
    defocus_v_angstroms: float
    astigmatism_angle_degrees: float  # of the major (u) axis from x
    fit_resolution_angstroms: float
    fit_score: float
    backend: str
    box_size_pixels: int
    phase_shift_degrees: float | None = None
    sample_thickness_angstroms: float | None = None
    diagnostic: np.ndarray | None = None  # (n, n) image: power spectrum | fitted model, when available
