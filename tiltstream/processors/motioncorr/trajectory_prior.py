"""A smooth-trajectory prior for whole-frame shifts: penalised second differences (Whittaker)."""

from __future__ import annotations

import torch

__all__ = ["smooth_trajectory"]


def smooth_trajectory(
    shifts_pixels: torch.Tensor,  # (t, 2)
    smoothing: float,
) -> torch.Tensor:
    """The trajectory ``s`` minimising ``|s - shifts|**2 + smoothing |D2 s|**2``; ``D2`` second differences.

    A drifting stage moves smoothly from frame to frame while shot noise scatters each frame's
    estimate independently: the penalty on the trajectory's curvature keeps the drift and removes
    the scatter. ``smoothing`` 0 (or fewer than three frames) returns ``shifts_pixels`` unchanged.
    Returns ``(t, 2)``.
    """
    t = shifts_pixels.shape[0]
    if smoothing <= 0 or t < 3:
        return shifts_pixels
    eye = torch.eye(t, dtype=torch.float64, device=shifts_pixels.device)
    second = eye[2:] - 2 * eye[1:-1] + eye[:-2]  # (t-2, t)
    system = eye + smoothing * second.T @ second
    smooth: torch.Tensor = torch.linalg.solve(system, shifts_pixels.to(torch.float64))
    return smooth.to(shifts_pixels.dtype)
