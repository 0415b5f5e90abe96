"""A tomogram's resolution from its two half tomograms: the FSC between them and its 0.143 crossing.

The half tomograms are reconstructed from independent halves of the data (the even and the odd movie
frames of every tilt, or alternating tilts). Their Fourier shell correlation ``FSC(k)`` estimates how
well each half agrees with the truth; the full tomogram, from twice the data, agrees better: its
correlation with the noise-free truth is ``C_ref = sqrt(2 FSC / (1 + FSC))`` (Rosenthal & Henderson
2003, J Mol Biol 333:721). The resolution reported is where the half-map FSC falls below 0.143, which
is where ``C_ref`` of the full tomogram falls below 0.5 — the usual half-map criterion, not the FSC
0.5 of two halves.

Halves of the frames share everything but the shot noise: the alignment, the CTF correction, the
missing wedge. Their FSC sees the noise only, so the estimate is optimistic: the tomogram resolves
this at best (on the simulated series of the tests, 52 Å, where the full tomogram's FSC against
the phantom falls below 0.5 at 82 Å). Halves of alternating tilts see different projections and so
also the tilt sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch_fourier_shell_correlation import fourier_shell_correlation

__all__ = [
    "HALF_MAP_THRESHOLD",
    "HalfMapFsc",
    "crossing_resolution_angstroms",
    "half_map_fsc",
    "reference_correlation",
]

#: The half-map FSC at which the full map's correlation with the truth is 0.5.
HALF_MAP_THRESHOLD = 0.143


@dataclass(frozen=True)
class HalfMapFsc:
    """The FSC between two half tomograms per shell, and the resolution it gives."""

    frequencies_per_angstrom: np.ndarray  # (n,) shell centres, 0 to Nyquist
    fsc: np.ndarray  # (n,)
    resolution_angstroms: float | None  # where the FSC falls below HALF_MAP_THRESHOLD; None: never above it


def reference_correlation(fsc: np.ndarray) -> np.ndarray:
    """``C_ref = sqrt(2 FSC / (1 + FSC))``: the full map's expected correlation with the truth.

    A negative FSC counts as 0.
    """
    clipped = np.clip(fsc, 0.0, 1.0)
    correlation: np.ndarray = np.sqrt(2 * clipped / (1 + clipped))
    return correlation


def half_map_fsc(
    even: np.ndarray,  # (d, h, w)
    odd: np.ndarray,  # (d, h, w)
    voxel_angstroms: float,
) -> HalfMapFsc:
    """The FSC of the half tomograms in shells ``1 / (n voxel)`` wide (``n`` their shortest edge, so a
    thin tomogram has few shells) and the resolution at its 0.143 crossing.

    Raises
    ------
    ValueError
        The halves differ in shape, are not 3-D, or the voxel size is not positive.
    """
    if even.shape != odd.shape or even.ndim != 3:
        raise ValueError(f"half tomograms of shapes {even.shape} and {odd.shape}")
    if not voxel_angstroms > 0:
        raise ValueError(f"voxel size {voxel_angstroms} Å")
    a = torch.from_numpy(np.array(even, dtype=np.float32))  # copies: the inputs may be read-only
    b = torch.from_numpy(np.array(odd, dtype=np.float32))
    fsc = np.nan_to_num(fourier_shell_correlation(a - a.mean(), b - b.mean()).numpy().astype(np.float64))
    frequencies = np.fft.rfftfreq(min(even.shape)) / voxel_angstroms  # the library's shell centres
    return HalfMapFsc(frequencies, fsc, crossing_resolution_angstroms(frequencies, fsc))


def crossing_resolution_angstroms(
    frequencies_per_angstrom: np.ndarray,  # (n,) ascending, shell 0 the origin
    fsc: np.ndarray,  # (n,)
    threshold: float = HALF_MAP_THRESHOLD,
) -> float | None:
    """``1 / k`` at the first frequency ``k`` where ``fsc`` falls below ``threshold``, interpolated
    linearly between the shells on either side.

    The origin (shell 0, the mean) is not looked at. An FSC that stays above the threshold to the last
    shell gives that shell's resolution (the Nyquist limit: a bound, the true value is finer); one that
    starts below it (the halves do not correlate) gives None. The first shells hold few voxels: for
    halves that do not correlate, noise there can still give a spurious crossing at a coarse value.
    """
    if len(fsc) < 2 or fsc[1] < threshold:
        return None
    below = np.nonzero(fsc[1:] < threshold)[0]
    if len(below) == 0:
        return float(1 / frequencies_per_angstrom[-1])
    k = int(below[0]) + 1  # fsc[k - 1] >= threshold > fsc[k], k >= 2
    fraction = (fsc[k - 1] - threshold) / (fsc[k - 1] - fsc[k])
    frequency = frequencies_per_angstrom[k - 1] + fraction * (
        frequencies_per_angstrom[k] - frequencies_per_angstrom[k - 1]
    )
    return float(1 / frequency) if math.isfinite(frequency) and frequency > 0 else None
