"""A global tilt-angle offset (the specimen's pre-tilt) without fiducials, by stretched correlation.

A thin specimen tilted to ``a`` is seen foreshortened by ``cos(a)`` perpendicular to the tilt axis, so
the image at ``b`` stretched by ``cos(a) / cos(b)`` matches the image at ``a``. When the specimen
lies tilted by ``offset`` at the nominal 0° (true angle = nominal + offset), the right factor is
``cos(a + offset) / cos(b + offset)``: at high tilt it differs from the nominal ratio by a few per
cent per degree, in opposite directions on the two sides of 0°. The offset maximises the mean
normalised correlation peak of tilt pairs stretched by it (:func:`~.tilt_axis.stretched_correlation_score`
with the angles shifted), searched on a coarse grid and refined by a least-squares parabola through
the points near the best one.

This relies on the specimen being a slab; a global offset leaves parallel projections of an arbitrary
3-D object consistent (it is a rotation of the object), so reprojection residuals cannot see it.
"""

from __future__ import annotations

import numpy as np
import torch

from tiltstream.processors.reconstruct.tilt_axis import stretched_correlation_score

__all__ = ["refine_tilt_offset"]


def _parabola_vertex(candidates: np.ndarray, scores: np.ndarray, half_width_points: int) -> float:
    """Vertex of the least-squares parabola through the best score and its neighbours."""
    best = int(np.argmax(scores))
    low, high = max(0, best - half_width_points), min(len(scores), best + half_width_points + 1)
    x, y = candidates[low:high], scores[low:high]
    if len(x) < 3:
        return float(candidates[best])
    a, b, _ = np.polyfit(x - candidates[best], y, 2)
    if a >= 0:
        return float(candidates[best])
    return float(candidates[best] + np.clip(-b / (2 * a), x[0] - candidates[best], x[-1] - candidates[best]))


def refine_tilt_offset(
    images: torch.Tensor,  # (t, h, w) aligned by shifts, band-passed, axis through the centre
    tilt_angles_degrees: np.ndarray,  # (t,) nominal
    axis_from_y_degrees: float,
    search_degrees: float = 5.0,
    step_degrees: float = 1.0,
    separation_degrees: float = 6.0,
    fit_half_width_points: int = 3,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The tilt-angle offset (degrees; true = nominal + offset) whose stretch best matches tilt pairs.

    Parameters
    ----------
    images
        Tilt images after the shift alignment, stretched about the image centre.
    search_degrees, step_degrees
        Candidate offsets on a grid of this step within this many degrees of zero.
    separation_degrees
        Angular distance between the tilts of a pair.
    fit_half_width_points
        The parabola is fitted through the best candidate and this many on each side.

    Returns
    -------
    offset_degrees, candidates_degrees, scores
        The refined offset (within the search window) and the scores of the grid ``(n,)``.
    """
    tilts = np.asarray(tilt_angles_degrees, dtype=np.float64)
    steps = max(1, round(search_degrees / step_degrees))
    candidates = step_degrees * np.arange(-steps, steps + 1, dtype=np.float64)  # (n,)
    with torch.no_grad():
        scores = np.array(
            [
                stretched_correlation_score(images, tilts + offset, axis_from_y_degrees, separation_degrees)
                for offset in candidates
            ]
        )
    offset = _parabola_vertex(candidates, scores, fit_half_width_points)
    return float(np.clip(offset, -search_degrees, search_degrees)), candidates, scores
