"""Refining the in-plane tilt axis angle without fiducials, by common lines.

Every projection of a specimen, summed across the tilt axis, gives the same 1-D profile along the axis
(the projection of the specimen onto the axis), whatever the tilt. With a wrong axis angle the profiles
of different tilts disagree, more so the higher the tilt. The refined angle maximises the mean
correlation of each tilt's profile with the mean profile.
"""

from __future__ import annotations

import numpy as np
import torch

from tiltstream.processors.reconstruct.geometry import align_images

__all__ = ["refine_tilt_axis"]


def _profile_agreement(
    images: torch.Tensor,  # (t, h, w), already shifted
    tilt_angles_degrees: np.ndarray,  # (t,)
    axis_from_y_degrees: float,
    band_fraction: float,
) -> float:
    t, h, w = images.shape
    rotated = align_images(images, torch.zeros(t, 2, device=images.device), axis_from_y_degrees)
    half = max(1, int(band_fraction * min(h, w) / 2))
    band = rotated[:, h // 2 - half : h // 2 + half, w // 2 - half : w // 2 + half]  # (t, 2b, 2b)
    profiles = band.sum(dim=-1).double().cpu().numpy()  # (t, 2b): sum across the axis
    profiles -= profiles.mean(axis=-1, keepdims=True)
    profiles /= np.linalg.norm(profiles, axis=-1, keepdims=True) + 1e-12
    # a wrong axis turns the profiles of +tilt and -tilt images opposite ways: compare each
    # tilt with the mean of the other side, weighted by how far it is tilted
    weights = np.abs(np.sin(np.radians(tilt_angles_degrees)))  # (t,)
    positive, negative = tilt_angles_degrees > 0, tilt_angles_degrees < 0
    score, total = 0.0, 0.0
    for side, other in ((positive, negative), (negative, positive)):
        if not side.any() or not other.any():
            continue
        reference = (profiles[other] * weights[other, None]).sum(axis=0)
        reference /= np.linalg.norm(reference) + 1e-12
        score += float((profiles[side] @ reference * weights[side]).sum())
        total += float(weights[side].sum())
    return score / total if total else 0.0


def refine_tilt_axis(
    images: torch.Tensor,  # (t, h, w) aligned by shifts only
    tilt_angles_degrees: np.ndarray,  # (t,)
    nominal_axis_from_y_degrees: float,
    search_degrees: float = 5.0,
    step_degrees: float = 0.5,
    band_fraction: float = 0.7,
) -> tuple[float, float]:
    """The tilt axis angle (from y, degrees) that makes the tilts' common lines agree best.

    Parameters
    ----------
    images
        Tilt images after the shift alignment.
    nominal_axis_from_y_degrees
        Start of the search: the microscope's axis angle.
    search_degrees, step_degrees
        Grid searched around the nominal angle; the best point is refined by a parabola through
        it and its neighbours.
    band_fraction
        Side of the central square used, as a fraction of the image (avoids the corners a rotation
        exposes).

    Returns
    -------
    axis_from_y_degrees, agreement
        The refined angle and its score (mean correlation, 1 = perfect agreement).
    """
    steps = round(search_degrees / step_degrees)
    candidates = nominal_axis_from_y_degrees + step_degrees * np.arange(-steps, steps + 1)
    tilts = np.asarray(tilt_angles_degrees, dtype=np.float64)
    scores = np.array([_profile_agreement(images, tilts, float(a), band_fraction) for a in candidates])
    best = int(np.argmax(scores))
    angle = float(candidates[best])
    if 0 < best < len(scores) - 1:
        left, mid, right = scores[best - 1 : best + 2]
        curvature = left - 2 * mid + right
        if curvature < 0:
            angle += float(0.5 * (left - right) / curvature * step_degrees)
    return angle, float(scores[best])
