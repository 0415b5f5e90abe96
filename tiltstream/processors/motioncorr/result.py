"""What a motion-correction backend returns (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MotionParameters", "MotionResult"]


@dataclass(frozen=True)
class MotionParameters:
    """The inputs a backend needs besides the frames."""

    pixel_size_angstroms: float
    dose_per_frame_e_per_angstrom2: float
    prior_dose_e_per_angstrom2: float
    voltage_kv: float
    patches_x: int = 1
    patches_y: int = 1
    binning: int = 1
    dose_weighting: bool = True
    #: the builtin backend's smooth-trajectory prior: expected second difference of the drift
    #: (angstroms per frame²), weighed against each frame's shot noise; 0 turns it off
    drift_curvature_angstroms: float = 1.5
    #: the local (patch) model's smoothness across neighbouring patches: the expected second difference
    #: of the local displacement from one patch to the next (angstroms)
    local_curvature_angstroms: float = 0.5
    #: also sum the even and the odd frames (``MotionResult.even_sum`` / ``odd_sum``)
    frame_halves: bool = True


@dataclass(frozen=True)
class MotionResult:
    """A corrected micrograph and the whole-frame shifts that aligned it."""

    summed: np.ndarray  # (h, w) plain sum of the aligned frames
    dose_weighted: np.ndarray | None  # (h, w) dose-weighted sum, when asked for
    shifts_angstroms: np.ndarray  # (t, 2) shifts (x, y) applied to align each frame, in angstroms
    pixel_size_angstroms: float  # of the micrograph, after binning
    patches_x: int
    patches_y: int
    backend: str
    #: sums of the even (0, 2, 4, ...) and the odd (1, 3, 5, ...) frames, each (h, w), weighted like the
    #: micrograph (dose-weighted when ``dose_weighted`` is set): even + odd is the micrograph; None: not made
    even_sum: np.ndarray | None = None
    odd_sum: np.ndarray | None = None
