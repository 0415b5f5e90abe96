"""Fiducial-less tilt-series alignment: stretched cross-correlation, tilt axis, projection matching.

1. **Coarse shifts** by torch-tiltxcorr (adjacent tilts, the higher one stretched by the cosine ratio
   perpendicular to the axis, accumulated outwards from the tilt nearest 0°), repeated on images
   already shifted by the previous estimate. torch-tiltxcorr stretches about the image centre, which
   is right only where the specimen's tilt axis passes through it: on raw images displaced by ``s``
   each pair's relative shift is off by ``s (cos(b) / cos(a) - 1)`` across the axis, up to a binned
   pixel once accumulated. After one pass the images are centred and the second pass is unbiased.
2. **Tilt axis** (optional) by the stretched correlation of tilt pairs over candidate angles
   (:func:`~.tilt_axis.refine_tilt_axis`), then the coarse shifts again at the refined angle.
3. **Along the axis**: tilting never moves a feature along the axis, so the profile of every tilt
   along the axis (summed across it over the same specimen region: a window ``cos(tilt)`` as wide at
   each tilt) is the same. Each tilt's profile is matched to the mean profile, a few rounds. Chained
   pair shifts drift like a random walk along the axis (each pair off by about 0.1 binned pixel, up
   to 0.9 at ±60° on the simulator's 64² series); one common reference removes that.
4. **Tilt-angle offset** (optional, :mod:`.tilt_offset`): the specimen's pre-tilt, by the stretched
   correlation of tilt pairs over candidate offsets.
5. **Residuals** (:mod:`.projection_matching`): each tilt against the reprojection of the weighted
   back-projection of all the others; the disagreement left, after the common translation and the
   height term are removed, is the tilt's residual, the mean correlation the alignment's quality.
6. **Outliers** (:mod:`.outliers`, unless switched off): a tilt whose correlation with its neighbours
   falls far below the series', or whose residual is too large, is left out and steps 1-5 are fitted
   again without it (twice at most), so that it cannot bend the shifts of the tilts beyond it.

Shifts are known only up to a common translation and a parallax term ``z sin(tilt)`` across the axis
(the height of the plane they follow); the tilt nearest 0° is the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch_affine_utils.transforms_2d import R
from torch_fourier_rescale import fourier_rescale_2d
from torch_tilt_series import preprocess_tilt_series_images
from torch_tiltxcorr import tiltxcorr

from tiltstream.processors.reconstruct.geometry import align_images
from tiltstream.processors.reconstruct.outliers import OutlierRule, find_outliers, neighbour_correlations
from tiltstream.processors.reconstruct.projection_matching import match_projections
from tiltstream.processors.reconstruct.tilt_axis import refine_tilt_axis
from tiltstream.processors.reconstruct.tilt_offset import refine_tilt_offset

__all__ = [
    "AlignmentOptions",
    "TiltSeriesAlignment",
    "align_along_axis",
    "align_tilt_series",
    "axis_profiles",
]


@dataclass(frozen=True)
class TiltSeriesAlignment:
    """Shifts (pixels of the images aligned), the refined axis and how well the tilts agree.

    Every array has a row per input tilt; the rows of ``outliers`` were left out of the fit that gave
    the others (theirs are from the last fit that still had them).
    """

    shifts_yx_pixels: torch.Tensor  # (t, 2) translation applied to each image to align it
    axis_from_y_degrees: float
    agreement: float  # mean correlation of each tilt used with its leave-one-out reprojection
    residuals_pixels: torch.Tensor  # (t,) disagreement of each tilt with the others, pixels
    neighbour_correlations: torch.Tensor  # (t,) best correlation with a neighbour in angle
    outliers: torch.Tensor  # (t,) bool: left out as alignment outliers
    tilt_angle_offset_degrees: float = 0.0  # true angle = nominal + offset


@dataclass(frozen=True)
class AlignmentOptions:
    """How steps 1-5 of the module docstring run.

    Attributes
    ----------
    thickness_pixels
        Specimen thickness, for the reprojections that give the residuals; half the width by default.
    lowpass_angstroms
        Low-pass before correlation; three pixels by default.
    refine_axis, axis_search_degrees
        Search the tilt axis within this many degrees of the nominal angle.
    refine_offset, offset_search_degrees
        Search a global tilt-angle offset within this many degrees of zero; the residuals are then
        computed at the nominal angles plus the offset.
    working_size_pixels
        The axis search and the residuals use images Fourier-cropped to at most this size.
    """

    thickness_pixels: int | None = None
    lowpass_angstroms: float | None = None
    refine_axis: bool = True
    axis_search_degrees: float = 5.0
    refine_offset: bool = False
    offset_search_degrees: float = 5.0
    working_size_pixels: int = 256


def _coarse_shifts(
    preprocessed: torch.Tensor,  # (t, h, w)
    tilts: torch.Tensor,  # (t,)
    axis_from_y: float,
    start: torch.Tensor,  # (t, 2)
    passes: int,
) -> torch.Tensor:  # (t, 2)
    """torch-tiltxcorr on images already shifted by ``start``, ``passes`` times."""
    shifts = start.clone()
    for _ in range(passes):
        centred = align_images(preprocessed, shifts, 0.0)  # (t, h, w)
        shifts = shifts + tiltxcorr(centred, tilts, axis_from_y, preprocess=False).to(shifts)
    return shifts


def _to_raw(
    aligned_yx: torch.Tensor,  # (t, 2) shift in the aligned frame (axis along y)
    axis_from_y: float,
) -> torch.Tensor:  # (t, 2) the same translation in the raw image frame
    # align_images samples raw(c + R (q - c) - shift): shifting the aligned image by d adds R d
    rotation = R(axis_from_y, yx=True, device=aligned_yx.device)[:2, :2]  # (2, 2)
    out: torch.Tensor = aligned_yx @ rotation.T
    return out


def axis_profiles(
    aligned: torch.Tensor,  # (t, h, w) tilt axis along y
    tilt_angles_degrees: torch.Tensor,  # (t,)
    region_fraction: float = 0.8,
) -> torch.Tensor:  # (t, h) unit-norm, zero-mean
    """Each tilt summed across the axis over the same specimen region.

    The region is ``region_fraction`` of the image width at 0°, ``cos(tilt)`` as wide at a tilt, with
    soft edges (a quarter of its half-width), so that content entering the field of view across the
    axis at high tilt does not change the profile.
    """
    w = aligned.shape[-1]
    u = torch.arange(w, device=aligned.device, dtype=torch.float32) - w // 2  # (w,)
    half = region_fraction * w / 2
    cosines = torch.cos(torch.deg2rad(tilt_angles_degrees.float()))  # (t,)
    x = u[None, :] / cosines[:, None]  # (t, w) specimen coordinate across the axis
    ramp = torch.clamp((half - x.abs()) / (0.25 * half), 0.0, 1.0)
    window = 0.5 - 0.5 * torch.cos(math.pi * ramp)  # (t, w)
    profiles = (aligned * window[:, None, :]).sum(dim=-1)  # (t, h)
    profiles = profiles - profiles.mean(dim=-1, keepdim=True)
    unit: torch.Tensor = profiles / (profiles.norm(dim=-1, keepdim=True) + 1e-12)
    return unit


def _profile_shifts(
    profiles: torch.Tensor,  # (t, n)
    reference: torch.Tensor,  # (n,)
    max_shift_pixels: float,
    step_pixels: float = 0.02,
) -> torch.Tensor:  # (t,) shift to apply to each profile to match the reference
    """Sub-pixel 1-D registration: the correlation evaluated at fine shifts by Fourier phase ramps."""
    n = profiles.shape[-1]
    device = profiles.device
    spectra = torch.fft.rfft(profiles.double(), n=2 * n)  # (t, n + 1)
    reference_spectrum = torch.fft.rfft(reference.double(), n=2 * n)  # (n + 1,)
    frequencies = torch.fft.rfftfreq(2 * n, device=device).double()  # (n + 1,)
    candidates = torch.arange(
        -max_shift_pixels, max_shift_pixels + step_pixels / 2, step_pixels, device=device
    ).double()  # (s,)
    ramps = torch.exp(-2j * math.pi * frequencies[None, :] * candidates[:, None])  # (s, n + 1)
    cross = spectra * reference_spectrum.conj()  # (t, n + 1)
    scores = (cross[:, None, :] * ramps[None, :, :]).real.sum(dim=-1)  # (t, s)
    return candidates[scores.argmax(dim=1)].float()


def align_along_axis(
    preprocessed: torch.Tensor,  # (t, h, w)
    tilt_angles_degrees: torch.Tensor,  # (t,)
    axis_from_y_degrees: float,
    shifts_yx_pixels: torch.Tensor,  # (t, 2)
    rounds: int = 3,
    max_shift_pixels: float = 4.0,
) -> torch.Tensor:  # (t, 2)
    """Correct the shifts along the tilt axis by matching every tilt's :func:`axis_profiles`.

    The reference is the mean profile; the tilt nearest 0° keeps its shift (the common translation).
    """
    reference_tilt = int(torch.argmin(tilt_angles_degrees.abs()))
    shifts = shifts_yx_pixels.clone()
    for _ in range(rounds):
        aligned = align_images(preprocessed, shifts, axis_from_y_degrees)  # (t, h, w)
        profiles = axis_profiles(aligned, tilt_angles_degrees)  # (t, h)
        along = _profile_shifts(profiles, profiles.mean(dim=0), max_shift_pixels)  # (t,)
        along = along - along[reference_tilt]
        shifts = shifts + _to_raw(torch.stack([along, torch.zeros_like(along)], dim=1), axis_from_y_degrees)
    return shifts


def _remove_gauge(
    errors_yx: torch.Tensor,  # (t, 2) aligned frame
    tilts: torch.Tensor,  # (t,)
) -> torch.Tensor:  # (t, 2)
    """Remove what the data cannot fix: a common translation and a height term ``z sin(tilt)``."""
    sines = torch.sin(torch.deg2rad(tilts.double()))
    design = torch.stack([torch.ones_like(sines), sines], dim=1)  # (t, 2)
    across = errors_yx[:, 1].double()
    coefficients = torch.linalg.lstsq(design, across[:, None]).solution  # (2, 1)
    cleaned = errors_yx.double().clone()
    cleaned[:, 1] = across - (design @ coefficients)[:, 0]
    cleaned[:, 0] -= cleaned[:, 0].mean()
    return cleaned.to(errors_yx.dtype)


def align_tilt_series(
    images: torch.Tensor,  # (t, h, w)
    tilt_angles_degrees: torch.Tensor,  # (t,)
    nominal_axis_from_y_degrees: float,
    pixel_size_angstroms: float,
    options: AlignmentOptions | None = None,
    outlier_rule: OutlierRule | None = None,
    max_refits: int = 2,
) -> TiltSeriesAlignment:
    """Align a tilt series (any order of tilts; see the module docstring), leaving out outliers.

    Parameters
    ----------
    images
        Tilt images at the pixel size the shifts are wanted in.
    options
        Steps 1-5 (:class:`AlignmentOptions`; its defaults when None).
    outlier_rule
        When a tilt is an alignment outlier (:class:`~.outliers.OutlierRule`); None: none is.
    max_refits
        The alignment is fitted again without the outliers found at most this many times.
    """
    options = options or AlignmentOptions()
    tilts = tilt_angles_degrees.float().to(images.device)
    fit = _align_once(images, tilts, nominal_axis_from_y_degrees, pixel_size_angstroms, options)
    if outlier_rule is None:
        return fit
    kept = torch.arange(images.shape[0], device=images.device)  # (k,) input rows of the current fit
    shifts, residuals = fit.shifts_yx_pixels.clone(), fit.residuals_pixels.clone()  # (t, 2), (t,)
    correlations, outliers = fit.neighbour_correlations.clone(), fit.outliers.clone()  # (t,), (t,)
    allowance = math.floor(outlier_rule.max_fraction * images.shape[0])  # of the whole series
    for _ in range(max_refits):
        found = find_outliers(
            fit.neighbour_correlations,
            fit.residuals_pixels * pixel_size_angstroms,
            tilts[kept],
            outlier_rule,
            allowed=allowance - int(outliers.sum()),
        )  # (k,)
        if not bool(found.any()):
            break
        outliers[kept[found]] = True
        kept = kept[~found]
        fit = _align_once(
            images[kept], tilts[kept], nominal_axis_from_y_degrees, pixel_size_angstroms, options
        )
        shifts[kept], residuals[kept] = fit.shifts_yx_pixels, fit.residuals_pixels
        correlations[kept] = fit.neighbour_correlations
    return replace(
        fit,
        shifts_yx_pixels=shifts,
        residuals_pixels=residuals,
        neighbour_correlations=correlations,
        outliers=outliers,
    )


def _align_once(
    images: torch.Tensor,  # (t, h, w)
    tilts: torch.Tensor,  # (t,) degrees, on the images' device
    nominal_axis_from_y_degrees: float,
    pixel_size_angstroms: float,
    options: AlignmentOptions,
) -> TiltSeriesAlignment:
    """Steps 1-5 of the module docstring on every tilt given (no outliers)."""
    t, h, w = images.shape
    lowpass = options.lowpass_angstroms or 3.0 * pixel_size_angstroms
    with torch.no_grad():
        preprocessed = preprocess_tilt_series_images(
            images.float(), low=0.025, high=min(0.5, pixel_size_angstroms / lowpass), falloff=0.025
        )  # (t, h, w)
        axis = nominal_axis_from_y_degrees
        shifts = _coarse_shifts(preprocessed, tilts, axis, torch.zeros(t, 2, device=images.device), 2)
        scale = max(1.0, max(h, w) / options.working_size_pixels)  # image pixels per working pixel
        working = (
            fourier_rescale_2d(preprocessed, 1.0, scale)[0] if scale > 1.0 else preprocessed
        )  # (t, h', w')
        if options.refine_axis:
            centred = align_images(working, shifts / scale, 0.0)
            axis, _ = refine_tilt_axis(
                centred, tilts.cpu().numpy(), axis, search_degrees=options.axis_search_degrees
            )
            shifts = _coarse_shifts(preprocessed, tilts, axis, shifts, 1)
        shifts = align_along_axis(preprocessed, tilts, axis, shifts)
        offset = 0.0
        if options.refine_offset:
            centred = align_images(working, shifts / scale, 0.0)  # (t, h', w')
            offset, _, _ = refine_tilt_offset(
                centred, tilts.cpu().numpy(), axis, search_degrees=options.offset_search_degrees
            )
        depth = max(8, math.ceil((options.thickness_pixels or w // 2) / scale))
        aligned = align_images(working, shifts / scale, axis)  # (t, h', w')
        match = match_projections(aligned, tilts + offset, depth)
        residuals = _remove_gauge(match.errors_yx_pixels, tilts + offset).norm(dim=1) * scale  # (t,)
        correlations = neighbour_correlations(aligned, tilts)  # (t,)
    return TiltSeriesAlignment(
        shifts_yx_pixels=shifts.float(),
        axis_from_y_degrees=axis,
        agreement=float(match.correlations.mean()),
        residuals_pixels=residuals.float(),
        neighbour_correlations=correlations.float(),
        outliers=torch.zeros(t, dtype=torch.bool, device=images.device),
        tilt_angle_offset_degrees=offset,
    )
