"""Drift statistics from per-frame shifts (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EARLY_FRAMES", "drift_fields"]

#: Frames counted as "early" motion (steps between frames 0..4), as ISPyB and RELION report it.
EARLY_FRAMES = 4


def drift_fields(shifts_angstroms: np.ndarray) -> dict[str, Any]:
    """The drift fields of ``MovieMotionCorrected`` from shifts applied to align each frame.

    Parameters
    ----------
    shifts_angstroms
        ``(t, 2)`` shifts (x, y) in angstroms applied to align each frame.
    """
    steps = np.linalg.norm(np.diff(shifts_angstroms, axis=0), axis=1)  # (t-1,)
    total = float(steps.sum())
    early = float(steps[:EARLY_FRAMES].sum())
    return {
        "total_motion_angstroms": total,
        "average_motion_per_frame_angstroms": total / max(len(steps), 1),
        "early_motion_angstroms": early,
        "late_motion_angstroms": max(total - early, 0.0),  # never -1 ulp from the pairwise sum
        "frame_shifts": [
            {"frame_index": i, "shift_x_angstroms": float(x), "shift_y_angstroms": float(y)}
            for i, (x, y) in enumerate(shifts_angstroms)
        ],
    }
