"""The specimen's thickness from the tomogram, and the depth the tomogram is cut to.

A reconstruction is made into the request's depth (an upper bound); the specimen fills only part of
it. The variance of each z slice (after removing each slice's mean) rises where the specimen is:
the slab is the run of slices, around the strongest one, whose variance stays above the empty
background (the lowest tenth of the slices) by more than ``LEVEL_FRACTION`` of the peak's excess.
The missing wedge spreads the specimen's variance in z into a peaked profile, so half-maximum
finds far too thin a slab (160 Å for the simulator's 400 Å slab at 10 Å voxels); a tenth finds it
(about 390 Å). The tomogram is then cut to that
slab plus ``margin_fraction`` of its thickness on each side, symmetrically about the volume's centre
(so the tomogram's origin, where alignment put the specimen, stays where it was; never deeper than
it was).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LEVEL_FRACTION", "SlabEstimate", "crop_to_slab", "estimate_slab"]

LEVEL_FRACTION = 0.1


@dataclass(frozen=True)
class SlabEstimate:
    """Where the specimen lies in z (slice indices, end exclusive) and its thickness."""

    start: int
    stop: int
    thickness_angstroms: float


def estimate_slab(volume: np.ndarray, voxel_angstroms: float) -> SlabEstimate | None:
    """The specimen slab of ``volume`` ``(d, h, w)``; None when the profile shows no slab (flat)."""
    d = volume.shape[0]
    if d < 4:
        return None
    profile = volume.reshape(d, -1).astype(np.float64).var(axis=1)  # (d,)
    background = float(np.sort(profile)[: max(1, d // 10)].mean())
    peak_index = int(np.argmax(profile))
    peak = float(profile[peak_index])
    if peak <= background * 1.5:
        return None
    level = background + LEVEL_FRACTION * (peak - background)
    start, stop = peak_index, peak_index + 1
    while start > 0 and profile[start - 1] >= level:
        start -= 1
    while stop < d and profile[stop] >= level:
        stop += 1
    return SlabEstimate(start, stop, (stop - start) * voxel_angstroms)


def crop_to_slab(volume: np.ndarray, slab: SlabEstimate, margin_fraction: float = 0.25) -> np.ndarray:
    """``volume`` cut to the slab plus the margin on each side (at least one slice each)."""
    d = volume.shape[0]
    margin = max(1, math.ceil((slab.stop - slab.start) * margin_fraction))
    half = max(d // 2 - (slab.start - margin), slab.stop + margin - d // 2)
    start, stop = max(0, d // 2 - half), min(d, d // 2 + half)
    return volume[start:stop]
