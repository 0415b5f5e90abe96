"""A smooth-trajectory prior for whole-frame shifts: penalised second differences (Whittaker)."""

from __future__ import annotations

import torch

__all__ = ["smooth_trajectory"]


def smooth_trajectory(
    shifts_pixels: torch.Tensor,  # (..., t, 2)
    smoothing: float | torch.Tensor,  # scalar, or (..., t, 2) per frame and axis
) -> torch.Tensor:
    """The trajectory ``s`` minimising ``sum (s - shifts)**2 / smoothing + |D2 s|**2`` (second differences).

    A drifting stage moves smoothly from frame to frame while shot noise scatters each frame's
    estimate independently: the penalty on the trajectory's curvature keeps the drift and removes
    the scatter. ``smoothing`` is the ratio of a frame's measurement variance to the variance of the
    trajectory's second difference (per frame and axis when a tensor: noisier frames follow their
    neighbours more). 0 (everywhere), or fewer than three frames, returns ``shifts_pixels``.
    Leading dimensions (patches) are smoothed independently. Returns ``(..., t, 2)``.
    """
    t = shifts_pixels.shape[-2]
    ratio = torch.as_tensor(smoothing, dtype=torch.float64, device=shifts_pixels.device)
    ratio = ratio.expand(shifts_pixels.shape)
    if t < 3 or not bool((ratio > 0).any()):
        return shifts_pixels
    eye = torch.eye(t, dtype=torch.float64, device=shifts_pixels.device)
    second = eye[2:] - 2 * eye[1:-1] + eye[:-2]  # (t-2, t)
    precision = 1 / ratio.clamp_min(1e-12).transpose(-1, -2)  # (..., 2, t); ratio 0: held where it is
    system = torch.diag_embed(precision) + second.T @ second  # (..., 2, t, t)
    right = (precision * shifts_pixels.transpose(-1, -2).to(torch.float64))[..., None]  # (..., 2, t, 1)
    smooth: torch.Tensor = torch.linalg.solve(system, right)[..., 0].transpose(-1, -2)  # (..., t, 2)
    return smooth.to(shifts_pixels.dtype)
