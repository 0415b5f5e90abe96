"""Outlier tilts: a tilt that does not look like its neighbours is left out, not aligned to.

Adjacent-pair correlation chains each tilt's shift to its neighbour's, outwards from 0°: one tilt
that shows no specimen (an empty or noisy image, a grid bar, a failed exposure) gives two random pair
shifts, and every tilt beyond it inherits their sum (31 binned pixels on a simulated series with one
noise tilt at +24°). The alignment therefore measures, at its own shifts,

* each tilt's **neighbour correlation**: the normalised correlation with its neighbours in angle
  (stretched, :func:`pair_correlations`), the better of the two: a good tilt next to a bad one still
  matches its other neighbour;
* each tilt's **residual**: its shift error against the reprojection of all the other tilts
  (:mod:`.projection_matching`).

A tilt is an outlier (:func:`find_outliers`) when its correlation falls far below that of the tilts
near it in angle (a running median, so that the fall of the correlation towards high tilt is no
outlier) by a robust z-score (median absolute deviation over the series) *and* by a fraction of it
(a very uniform series has a tiny deviation), or when its residual is both above a length in Å and
far above the series' median residual (robust z-score): at low dose every residual is large (30-260 Å
on the scoreboard's 9-tilt series at 4 e/Å², correlations near 0.05), and none of them is news. The
alignment is then fitted again without the outliers, which are left out of the reconstruction with
the reason :data:`ALIGNMENT_OUTLIER`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch_tiltxcorr.utils import taper_image_edges

__all__ = [
    "ALIGNMENT_OUTLIER",
    "OutlierRule",
    "find_outliers",
    "neighbour_correlations",
    "pair_correlations",
    "running_median",
]

#: The exclusion reason of a tilt the alignment leaves out.
ALIGNMENT_OUTLIER = "alignment-outlier"


@dataclass(frozen=True)
class OutlierRule:
    """When a tilt is an outlier of its series' alignment (see the module docstring)."""

    correlation_mads: float = 6.0  # robust z-score below the running median of the correlations
    correlation_fraction: float = 0.5  # and below this fraction of that median
    residual_angstroms: float = 100.0  # or a residual against the others' reprojection above this
    residual_mads: float = 6.0  # and this many robust deviations above the series' median residual
    window_tilts: int = 9  # tilts in the running median, centred on each tilt in angle
    max_fraction: float = 0.25  # at most this fraction of the tilts is left out, the worst first


def _stretched_across_axis(
    images: torch.Tensor,  # (n, h, w) tilt axis along y
    factors: torch.Tensor,  # (n,) stretch across the axis about the image centre
) -> torch.Tensor:  # (n, h, w)
    """Each image stretched along x by its factor (a feature at ``x`` moves to ``factor x``)."""
    n, h, w = images.shape
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = 1.0 / factors
    theta[:, 1, 1] = 1.0
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)  # (n, h, w, 2)
    out: torch.Tensor = F.grid_sample(
        images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[:, 0]
    return out


def pair_correlations(
    aligned: torch.Tensor,  # (t, h, w) band-passed, aligned, tilt axis along y
    tilt_angles_degrees: torch.Tensor,  # (t,)
    peak_radius_pixels: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:  # (t - 1,) scores, (t - 1, 2) tilt indices of each pair
    """Normalised correlation of each pair of tilts adjacent in angle, at the alignment's shifts.

    The tilt of the pair further from 0° is stretched by ``cos(near) / cos(far)`` across the axis;
    the peak is looked for within ``peak_radius_pixels`` of zero shift.
    """
    order = torch.argsort(tilt_angles_degrees)
    pairs = torch.stack([order[:-1], order[1:]], dim=1)  # (p, 2)
    cosines = torch.cos(torch.deg2rad(tilt_angles_degrees.double()))  # (t,)
    near_first = cosines[pairs[:, 0]] >= cosines[pairs[:, 1]]  # (p,)
    near = torch.where(near_first, pairs[:, 0], pairs[:, 1])
    far = torch.where(near_first, pairs[:, 1], pairs[:, 0])
    factors = (cosines[near] / cosines[far]).to(aligned.dtype)  # (p,)
    a = aligned[near] - aligned[near].mean(dim=(-2, -1), keepdim=True)
    b = _stretched_across_axis(aligned[far], factors)
    b = b - b.mean(dim=(-2, -1), keepdim=True)
    a, b = taper_image_edges(a), taper_image_edges(b)
    h, w = aligned.shape[-2:]
    cross = torch.fft.irfftn(
        torch.fft.rfftn(a, dim=(-2, -1)) * torch.fft.rfftn(b, dim=(-2, -1)).conj(), s=(h, w), dim=(-2, -1)
    )
    r = peak_radius_pixels
    near_zero = torch.roll(cross, shifts=(r, r), dims=(-2, -1))[:, : 2 * r + 1, : 2 * r + 1]
    norms = a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1) + 1e-12  # (p,)
    return near_zero.flatten(1).max(dim=1).values / norms, pairs


def neighbour_correlations(
    aligned: torch.Tensor,  # (t, h, w)
    tilt_angles_degrees: torch.Tensor,  # (t,)
) -> torch.Tensor:  # (t,)
    """Each tilt's best :func:`pair_correlations` score with either neighbour in angle."""
    scores, pairs = pair_correlations(aligned, tilt_angles_degrees)
    best = torch.full((aligned.shape[0],), -math.inf, dtype=scores.dtype, device=scores.device)
    best = best.scatter_reduce(0, pairs[:, 0], scores, "amax")
    return best.scatter_reduce(0, pairs[:, 1], scores, "amax")


def running_median(
    values: torch.Tensor,  # (t,) in the order of increasing tilt angle
    window: int,
) -> torch.Tensor:  # (t,)
    """The median of the ``window`` values nearest each one in order (centred, shifted inwards at the ends).

    Shifting the window at the ends, rather than repeating the end value, keeps a bad tilt at the end of
    the series from being its own reference.
    """
    t = values.shape[0]
    size = max(1, min(window, t))
    medians = values.unfold(0, size, 1).median(dim=1).values  # (t - size + 1,)
    starts = (torch.arange(t, device=values.device) - size // 2).clamp(0, t - size)  # (t,)
    out: torch.Tensor = medians[starts]
    return out


def _robust_z(
    values: torch.Tensor,  # (t,)
) -> torch.Tensor:  # (t,)
    """How far each value lies above the median, in robust standard deviations (1.4826 MAD)."""
    median = values.median()
    spread = 1.4826 * (values - median).abs().median() + 1e-6
    z: torch.Tensor = (values - median) / spread
    return z


def _correlation_scores(
    correlations: torch.Tensor,  # (t,)
    tilt_angles_degrees: torch.Tensor,  # (t,)
    rule: OutlierRule,
) -> tuple[torch.Tensor, torch.Tensor]:  # (t,) robust z-score, (t,) running median
    """How far each correlation falls below the running median, in robust standard deviations."""
    order = torch.argsort(tilt_angles_degrees)
    local = torch.empty_like(correlations)
    local[order] = running_median(correlations[order], rule.window_tilts)
    deficit = local - correlations  # (t,)
    spread = 1.4826 * (deficit - deficit.median()).abs().median() + 1e-6
    return deficit / spread, local


def find_outliers(
    correlations: torch.Tensor,  # (t,) neighbour correlations
    residuals_angstroms: torch.Tensor,  # (t,)
    tilt_angles_degrees: torch.Tensor,  # (t,)
    rule: OutlierRule,
    allowed: int | None = None,
) -> torch.Tensor:  # (t,) bool
    """The tilts that the rule calls outliers, at most ``allowed`` of them (the worst).

    ``allowed`` defaults to ``max_fraction`` of the tilts given; a refit passes what is left of the
    series' allowance.
    """
    z, local = _correlation_scores(correlations.double(), tilt_angles_degrees, rule)
    weak = (z > rule.correlation_mads) & (correlations < rule.correlation_fraction * local)
    astray = (residuals_angstroms > rule.residual_angstroms) & (
        _robust_z(residuals_angstroms.double()) > rule.residual_mads
    )
    flagged = weak | astray
    if allowed is None:
        allowed = math.floor(rule.max_fraction * correlations.shape[0])
    if int(flagged.sum()) <= allowed:
        return flagged
    badness = torch.where(astray, math.inf, z) * flagged  # residual outliers first, then by z
    worst = torch.zeros_like(flagged)
    worst[torch.topk(badness, allowed).indices] = True
    return worst & flagged
