"""Fiducial-less tilt-series alignment: cross-correlation with cosine stretching, then the tilt axis.

1. shifts by torch-tiltxcorr (adjacent tilts, the higher one stretched by the cosine ratio
   perpendicular to the axis, accumulated outwards from the lowest tilt) at the nominal axis angle;
2. the tilt axis angle refined by common lines (:func:`refine_tilt_axis`);
3. shifts estimated again at the refined angle; 2 and 3 repeated (at most ``iterations`` times)
   until the angle moves by less than a tenth of a degree.

Shifts are known only up to a common translation and a parallax term ``z * sin(tilt)`` perpendicular
to the axis (the height of the plane they follow); the lowest tilt is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_tiltxcorr import tiltxcorr

from tiltstream.processors.reconstruct.tilt_axis import refine_tilt_axis

__all__ = ["TiltSeriesAlignment", "align_tilt_series"]


@dataclass(frozen=True)
class TiltSeriesAlignment:
    """Shifts (pixels of the images aligned) and the refined axis."""

    shifts_yx_pixels: torch.Tensor  # (t, 2) translation applied to each image to align it
    axis_from_y_degrees: float
    axis_agreement: float


def _shifts(
    images: torch.Tensor, tilts: torch.Tensor, axis_from_y: float, pixel: float, lowpass: float
) -> torch.Tensor:
    shifts: torch.Tensor = tiltxcorr(
        images, tilts, axis_from_y, pixel_spacing_angstroms=pixel, lowpass_angstroms=lowpass
    )
    return shifts  # (t, 2) yx


def align_tilt_series(
    images: torch.Tensor,  # (t, h, w)
    tilt_angles_degrees: torch.Tensor,  # (t,)
    nominal_axis_from_y_degrees: float,
    pixel_size_angstroms: float,
    *,
    lowpass_angstroms: float | None = None,
    refine_axis: bool = True,
    axis_search_degrees: float = 5.0,
    iterations: int = 3,
) -> TiltSeriesAlignment:
    """Align a tilt series (any order of tilts; see the module docstring).

    Parameters
    ----------
    lowpass_angstroms
        Low-pass before correlation; three pixels by default.
    """
    from tiltstream.processors.reconstruct.geometry import align_images

    lowpass = lowpass_angstroms or 3.0 * pixel_size_angstroms
    tilts = tilt_angles_degrees.float()
    axis = nominal_axis_from_y_degrees
    shifts = _shifts(images, tilts, axis, pixel_size_angstroms, lowpass)  # (t, 2)
    agreement = float("nan")
    if refine_axis:
        low, high = axis - axis_search_degrees, axis + axis_search_degrees
        for _ in range(iterations):
            shifted = align_images(images, shifts, 0.0)
            refined, agreement = refine_tilt_axis(
                shifted, tilts.cpu().numpy(), axis, search_degrees=axis_search_degrees
            )
            refined = min(max(refined, low), high)  # never wander off the microscope's value
            moved = abs(refined - axis)
            axis = refined
            shifts = _shifts(images, tilts, axis, pixel_size_angstroms, lowpass)
            if moved < 0.1:
                break
    return TiltSeriesAlignment(shifts.float(), axis, agreement)
