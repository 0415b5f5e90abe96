"""What a reconstruction backend returns (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tiltstream.processors.reconstruct.ctf_correction import SeriesCtf
from tiltstream.processors.reconstruct.outliers import OutlierRule

__all__ = ["ReconstructionParameters", "ReconstructionResult"]


@dataclass(frozen=True)
class ReconstructionParameters:
    """The inputs a backend needs besides the images."""

    pixel_size_angstroms: float  # of the micrographs
    tilt_axis_angle_degrees: float  # nominal, from the image x axis
    binning: int = 4
    thickness_angstroms: float = 3000.0
    refine_tilt_axis: bool = True
    axis_search_degrees: float = 3.0
    refine_tilt_offset: bool = False
    offset_search_degrees: float = 5.0
    tile_sidelength_pixels: int = 128  # torch-tomogram's tiles
    #: builtin backend: ``filtered`` back-projection (ours) or torch-tomogram's weighted one (reference)
    back_projection: Literal["filtered", "torch-tomogram"] = "filtered"
    #: builtin backend: without frame halves, reconstruct the even and the odd tilts of the stack instead
    half_tomograms: bool = False
    ctf: SeriesCtf | None = None  # phase-flip the tilts with these estimates (None: no correction)
    ctf_band_angstroms: float = 50.0
    #: builtin backend: tilts the alignment leaves out (None: every tilt is used)
    outlier_rule: OutlierRule | None = field(default_factory=OutlierRule)


@dataclass(frozen=True)
class ReconstructionResult:
    """A tomogram, the aligned stack it came from and the alignment of every tilt used.

    Shifts are in micrograph (unbinned) pixels, as translations applied to each micrograph to align
    it, in the order of ``tilt_angles_degrees`` (the stack order, sorted by tilt); a backend that drops
    tilts (AreTomo's dark frames, the builtin alignment's outliers) says which stack rows it kept in
    ``stack_indices`` and why it dropped each of the others in ``dropped``.
    """

    tomogram: np.ndarray  # (d, h, w) float32, tilt axis along y
    aligned_stack: np.ndarray  # (t, h, w) float32, binned, tilt axis along y
    tilt_angles_degrees: np.ndarray  # (t,) as used (nominal + offset)
    shifts_xy_pixels: np.ndarray  # (t, 2)
    tilt_axis_angle_degrees: float  # refined, from the image x axis
    pixel_spacing_angstroms: float  # of the tomogram
    tilt_angle_offset_degrees: float
    axis_agreement: float | None
    backend: str
    stack_indices: np.ndarray | None = None  # (t,) rows of the input stack used; None: all of them
    residuals_pixels: np.ndarray | None = None  # (t,) per-tilt alignment residual, micrograph pixels
    #: (even, odd): each (d, h, w), aligned like the tomogram, from the even- and odd-frame sums of every
    #: tilt ("frames") or from stack rows 0, 2, 4, ... and 1, 3, 5, ... ("tilts"); None: neither
    half_tomograms: tuple[np.ndarray, np.ndarray] | None = None
    half_tomograms_from: Literal["frames", "tilts"] | None = None
    dropped: dict[int, str] = field(default_factory=dict)  # stack row -> exclusion reason
    #: (t,) each used tilt's best normalised correlation with a neighbour in angle; None: not measured
    neighbour_correlations: np.ndarray | None = None
