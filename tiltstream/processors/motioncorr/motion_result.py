"""A backend's tensors as the :class:`~tiltstream.processors.motioncorr.result.MotionResult` it returns."""

from __future__ import annotations

import numpy as np
import torch

from tiltstream.processors.motioncorr.result import MotionParameters, MotionResult

__all__ = ["motion_result"]


def motion_result(
    summed: torch.Tensor,  # (h, w)
    weighted: torch.Tensor | None,  # (h, w) dose-weighted sum, when weighted
    displacement_pixels: torch.Tensor,  # (t, 2) yx: how far each frame's content moved
    pixel_angstroms: float,
    parameters: MotionParameters,
    backend: str,
    halves: tuple[torch.Tensor, torch.Tensor] | None = None,  # (even (h, w), odd (h, w)) frame sums
) -> MotionResult:
    """The sums as numpy, and the applied shifts in Å, xy: the negated displacement.

    ``halves`` are the even- and odd-frame sums (:func:`~.frame_halves.frame_half_sums`), weighted like
    the micrograph.
    """
    applied = -(displacement_pixels * pixel_angstroms).flip(1).cpu().numpy().astype(np.float64)  # (t, 2) xy
    return MotionResult(
        summed=summed.cpu().numpy(),
        dose_weighted=None if weighted is None else weighted.cpu().numpy(),
        shifts_angstroms=applied,
        pixel_size_angstroms=float(pixel_angstroms),
        patches_x=parameters.patches_x,
        patches_y=parameters.patches_y,
        backend=backend,
        even_sum=None if halves is None else halves[0].cpu().numpy(),
        odd_sum=None if halves is None else halves[1].cpu().numpy(),
    )
