"""Projection matching: every tilt against the reprojection of a reconstruction from all the others.

Adjacent-pair correlation (:mod:`.alignment`) chains relative shifts outwards from the reference tilt,
so its small per-pair errors add up like a random walk (about 0.1 binned pixel per pair, up to a pixel
at ±60°). Here each tilt is compared with what the other tilts say it should look like, so errors do
not accumulate:

1. every aligned image (tilt axis along y) is ramp-filtered across the axis and back-projected into a
   thin real-space volume (rows along the axis are independent 2-D problems);
2. the reprojection of tilt ``i`` without its own contribution is ``FP_i(V) - FP_i(BP_i(q_i))``
   (back-projection is linear), so one volume serves every tilt;
3. each tilt is cross-correlated with its reprojection; the peak is its shift error.

The back- and forward projectors are a matched pair in this module's own convention; a mirrored
convention reconstructs the mirror image and reprojects the same images, so the sign of the tilt
angles cannot trap it (unlike the comparison with a phantom).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch_tiltxcorr.utils import (
    calculate_cross_correlation,
    get_shift_from_correlation_image,
    taper_image_edges,
)

__all__ = [
    "MatchResult",
    "back_project",
    "forward_project",
    "leave_one_out_reprojections",
    "match_projections",
]


def _sample_rows(
    rows: torch.Tensor,  # (h, n) values along the last axis
    positions: torch.Tensor,  # (m,) fractional indices into the last axis
) -> torch.Tensor:  # (h, m), zero outside [0, n - 1]
    n = rows.shape[-1]
    low = torch.floor(positions)
    frac = (positions - low).to(rows.dtype)
    low_index = low.long()
    inside_low = (low_index >= 0) & (low_index <= n - 1)
    inside_high = (low_index + 1 >= 0) & (low_index + 1 <= n - 1)
    a = rows[:, low_index.clamp(0, n - 1)] * (inside_low * (1 - frac))
    b = rows[:, (low_index + 1).clamp(0, n - 1)] * (inside_high * frac)
    return a + b


def _ramp_filter(
    images: torch.Tensor,  # (t, h, w)
) -> torch.Tensor:  # (t, h, w)
    """Ramp filter across the tilt axis (along x), on a copy padded to twice the width."""
    w = images.shape[-1]
    spectrum = torch.fft.rfft(images, n=2 * w, dim=-1)  # (t, h, w + 1)
    ramp = torch.fft.rfftfreq(2 * w, device=images.device).abs()  # (w + 1,) cycles per pixel
    filtered: torch.Tensor = torch.fft.irfft(spectrum * ramp, n=2 * w, dim=-1)[..., :w]
    return filtered


def back_project(
    filtered: torch.Tensor,  # (h, w) one filtered projection, tilt axis along y
    tilt_angle_degrees: float,
    depth_pixels: int,
) -> torch.Tensor:  # (h, d, w)
    """Smear one projection through a volume along its rays: ``V(z, y, x) = q(y, x cos + z sin)``."""
    h, w = filtered.shape
    device = filtered.device
    theta = math.radians(tilt_angle_degrees)
    x = torch.arange(w, device=device, dtype=torch.float32) - w // 2  # (w,)
    z = torch.arange(depth_pixels, device=device, dtype=torch.float32) - (depth_pixels - 1) / 2  # (d,)
    u = x[None, :] * math.cos(theta) + z[:, None] * math.sin(theta) + w // 2  # (d, w)
    return _sample_rows(filtered, u.reshape(-1)).reshape(h, depth_pixels, w)


def forward_project(
    volume: torch.Tensor,  # (h, d, w), tilt axis along y
    tilt_angle_degrees: float,
) -> torch.Tensor:  # (h, w)
    """Line integrals of ``volume`` along the rays of a tilt (the geometry of :func:`back_project`)."""
    h, d, w = volume.shape
    device = volume.device
    theta = math.radians(tilt_angle_degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    u = torch.arange(w, device=device, dtype=torch.float32) - w // 2  # (w,)
    z = torch.arange(d, device=device, dtype=torch.float32) - (d - 1) / 2  # (d,)
    x = (u[None, :] - z[:, None] * sin) / cos + w // 2  # (d, w) where each ray meets plane z
    low = torch.floor(x)
    frac = x - low
    low_index = low.long()
    flat = volume.reshape(h, d * w)
    offsets = (torch.arange(d, device=device) * w)[:, None]  # (d, 1)
    total = torch.zeros(h, d, w, device=device, dtype=volume.dtype)
    for shift, weight in ((0, 1 - frac), (1, frac)):
        index = low_index + shift
        inside = (index >= 0) & (index <= w - 1)
        values = flat[:, (index.clamp(0, w - 1) + offsets).reshape(-1)].reshape(h, d, w)
        total += values * (weight * inside)
    return total.sum(dim=1) / cos


def leave_one_out_reprojections(
    aligned: torch.Tensor,  # (t, h, w) tilt axis along y
    tilt_angles_degrees: torch.Tensor,  # (t,)
    depth_pixels: int,
) -> torch.Tensor:  # (t, h, w)
    """Each tilt as predicted by the weighted back-projection of all the others."""
    filtered = _ramp_filter(aligned)  # (t, h, w)
    angles = [float(a) for a in tilt_angles_degrees]
    volume = torch.zeros(aligned.shape[1], depth_pixels, aligned.shape[2], device=aligned.device)
    own = []
    for image, angle in zip(filtered, angles, strict=True):
        smeared = back_project(image, angle, depth_pixels)  # (h, d, w)
        volume += smeared
        own.append(forward_project(smeared, angle))
    return torch.stack(
        [forward_project(volume, angle) - mine for angle, mine in zip(angles, own, strict=True)]
    )


def _normalised(image: torch.Tensor) -> torch.Tensor:
    centred = image - image.mean()
    unit: torch.Tensor = centred / (centred.norm() + 1e-12)
    return unit


@dataclass(frozen=True)
class MatchResult:
    """Shift errors of each tilt against its leave-one-out reprojection, in the aligned frame."""

    errors_yx_pixels: torch.Tensor  # (t, 2) shift to apply to each aligned image to match
    correlations: torch.Tensor  # (t,) normalised correlation of each tilt with its reprojection


def match_projections(
    aligned: torch.Tensor,  # (t, h, w) preprocessed, tilt axis along y
    tilt_angles_degrees: torch.Tensor,  # (t,)
    depth_pixels: int,
) -> MatchResult:
    """Compare every aligned tilt with its leave-one-out reprojection.

    Parameters
    ----------
    aligned
        Band-passed tilt images resampled into the aligned frame.
    depth_pixels
        Thickness of the reconstruction that predicts the tilts: the specimen's, with a margin.
    """
    reprojections = leave_one_out_reprojections(aligned, tilt_angles_degrees, depth_pixels)
    t, h = aligned.shape[:2]
    p = h // 4
    errors = torch.zeros(t, 2, device=aligned.device)
    correlations = torch.zeros(t, device=aligned.device)
    for i in range(t):
        image = taper_image_edges(_normalised(aligned[i]), fraction=0.2)
        reference = taper_image_edges(_normalised(reprojections[i]), fraction=0.2)
        correlations[i] = (_normalised(image) * _normalised(reference)).sum()
        correlation = calculate_cross_correlation(F.pad(reference, [p] * 4), F.pad(image, [p] * 4))
        errors[i] = get_shift_from_correlation_image(F.pad(correlation, [-p] * 4))
    return MatchResult(errors, correlations)
