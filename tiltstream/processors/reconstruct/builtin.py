"""The builtin backend: teamtomo's torch stack (torch-tiltxcorr, torch-tomogram), on CUDA or CPU."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import torch
import torch_tomogram
from torch_fourier_rescale import fourier_rescale_2d
from torch_tomogram import Tomogram

from tiltstream.processors.reconstruct.alignment import (
    AlignmentOptions,
    TiltSeriesAlignment,
    align_tilt_series,
)
from tiltstream.processors.reconstruct.ctf_correction import phase_flip
from tiltstream.processors.reconstruct.filtered_back_projection import filtered_back_projection
from tiltstream.processors.reconstruct.geometry import align_images, axis_from_y_degrees
from tiltstream.processors.reconstruct.outliers import ALIGNMENT_OUTLIER
from tiltstream.processors.reconstruct.result import ReconstructionParameters, ReconstructionResult

__all__ = ["reconstruct_builtin", "weighted_back_projection"]


def weighted_back_projection(
    aligned_stack: torch.Tensor,  # (t, h, w), tilt axis along y
    tilt_angles_degrees: torch.Tensor,  # (t,)
    thickness_pixels: int,
    tile_sidelength_pixels: int = 128,
) -> torch.Tensor:  # (d, h, w)
    """Reconstruct an aligned stack by weighted back-projection (Fourier insertion with weights).

    torch-tomogram reconstructs the volume in cubic tiles (each from subtilts padded twice), so
    memory stays bounded at any size. The sign of the tilt angles is the one that reproduces the
    simulator's phantom (a flipped sign correlates with it at about 0.1 instead of 0.8).
    """
    t, h, w = aligned_stack.shape
    device = aligned_stack.device
    tomogram = Tomogram(
        tilt_angles=tilt_angles_degrees.float(),
        tilt_axis_angle=torch.zeros(t, device=device),
        sample_translations=torch.zeros(t, 2, device=device),
        images=aligned_stack,
        device=device,
    )
    with torch.no_grad():
        return tomogram.reconstruct_tomogram((thickness_pixels, h, w), tile_sidelength_pixels)


def _back_project(
    aligned: torch.Tensor,  # (t, h, w)
    tilt_angles_degrees: torch.Tensor,  # (t,)
    thickness_pixels: int,
    parameters: ReconstructionParameters,
) -> torch.Tensor:  # (d, h, w)
    """The back-projection the parameters name: ours (filtered) or torch-tomogram's."""
    if parameters.back_projection == "filtered":
        return filtered_back_projection(aligned, tilt_angles_degrees, thickness_pixels)
    return weighted_back_projection(
        aligned, tilt_angles_degrees, thickness_pixels, parameters.tile_sidelength_pixels
    )


def _binned_and_flipped(
    images: np.ndarray,  # (t, h, w)
    tilt_angles_degrees: np.ndarray,  # (t,)
    parameters: ReconstructionParameters,
    device: torch.device,
) -> tuple[torch.Tensor, float]:  # (t, h', w'), binned pixel in Å
    """Step 1: Fourier-cropped by ``binning``, phase-flipped when the request carries CTF estimates."""
    pixel = parameters.pixel_size_angstroms
    with torch.no_grad():
        stack = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)  # (t, h, w)
        binned, binned_pixel = stack, pixel
        if parameters.binning > 1:
            binned, (spacing, _) = fourier_rescale_2d(stack, pixel, pixel * parameters.binning)
            binned_pixel = float(spacing)
        if parameters.ctf is not None:
            binned = phase_flip(
                binned,
                binned_pixel,
                [float(a) for a in tilt_angles_degrees],
                parameters.tilt_axis_angle_degrees,
                parameters.ctf,
                parameters.ctf_band_angstroms,
            )
    return binned, binned_pixel


def _halves(
    aligned: torch.Tensor,  # (t, h, w)
    tilts_degrees: torch.Tensor,  # (t,)
    thickness_pixels: int,
    parameters: ReconstructionParameters,
) -> tuple[np.ndarray, np.ndarray]:  # (d, h, w) each
    """The half tomograms from alternating tilts (even, odd)."""
    even, odd = (
        _back_project(aligned[first::2], tilts_degrees[first::2], thickness_pixels, parameters)
        .cpu()
        .numpy()
        .astype(np.float32)
        for first in (0, 1)
    )
    return even, odd


def _align(
    binned: torch.Tensor,  # (t, h, w)
    tilts: torch.Tensor,  # (t,)
    binned_pixel_angstroms: float,
    thickness_pixels: int,
    parameters: ReconstructionParameters,
) -> TiltSeriesAlignment:
    """Step 2: the alignment the parameters ask for, outliers left out by their rule."""
    options = AlignmentOptions(
        thickness_pixels=thickness_pixels,
        refine_axis=parameters.refine_tilt_axis,
        axis_search_degrees=parameters.axis_search_degrees,
        refine_offset=parameters.refine_tilt_offset,
        offset_search_degrees=parameters.offset_search_degrees,
    )
    axis = axis_from_y_degrees(parameters.tilt_axis_angle_degrees)
    return align_tilt_series(binned, tilts, axis, binned_pixel_angstroms, options, parameters.outlier_rule)


def _rows(
    alignment: TiltSeriesAlignment,
    kept: torch.Tensor,  # (k,) rows
) -> TiltSeriesAlignment:
    """The alignment of the tilts ``kept`` only."""
    return dataclasses.replace(
        alignment,
        shifts_yx_pixels=alignment.shifts_yx_pixels[kept],
        residuals_pixels=alignment.residuals_pixels[kept],
        neighbour_correlations=alignment.neighbour_correlations[kept],
        outliers=alignment.outliers[kept],
    )


def _frame_halves(
    half_images: tuple[np.ndarray, np.ndarray],  # (even (t, h, w), odd (t, h, w)) frame sums
    tilt_angles_degrees: np.ndarray,  # (t,) nominal
    alignment: TiltSeriesAlignment,
    thickness_pixels: int,
    parameters: ReconstructionParameters,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:  # (d, h, w) each
    """The half tomograms of the even- and odd-frame sums: each binned, phase-flipped, aligned and
    back-projected exactly as the micrographs were, with the alignment of the micrographs."""
    tilts = torch.as_tensor(tilt_angles_degrees, dtype=torch.float32, device=device)
    tilts = tilts + alignment.tilt_angle_offset_degrees
    volumes = []
    for images in half_images:
        binned, _ = _binned_and_flipped(images, tilt_angles_degrees, parameters, device)
        with torch.no_grad():
            aligned = align_images(binned, alignment.shifts_yx_pixels, alignment.axis_from_y_degrees)
            volume = _back_project(aligned, tilts, thickness_pixels, parameters)
        volumes.append(volume.cpu().numpy().astype(np.float32))
    return volumes[0], volumes[1]


def _half_tomograms(
    half_images: tuple[np.ndarray, np.ndarray] | None,  # (even, odd) frame sums, (t, h, w) each
    aligned: torch.Tensor,  # (t, h', w') the aligned micrographs
    tilt_angles_degrees: np.ndarray,  # (t,) nominal
    alignment: TiltSeriesAlignment,
    thickness_pixels: int,
    parameters: ReconstructionParameters,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, Literal["frames", "tilts"] | None]:
    """Step 5: the half tomograms and what they were made from (``None, None``: none)."""
    if half_images is not None:
        halves = _frame_halves(
            half_images, tilt_angles_degrees, alignment, thickness_pixels, parameters, aligned.device
        )
        return halves, "frames"
    if not parameters.half_tomograms:
        return None, None
    tilts = torch.as_tensor(tilt_angles_degrees, dtype=torch.float32, device=aligned.device)
    with torch.no_grad():
        tilts = tilts + alignment.tilt_angle_offset_degrees
        return _halves(aligned, tilts, thickness_pixels, parameters), "tilts"


def reconstruct_builtin(
    images: np.ndarray,  # (t, h, w) micrographs in tilt order
    tilt_angles_degrees: np.ndarray,  # (t,)
    parameters: ReconstructionParameters,
    device: torch.device,
    half_images: tuple[np.ndarray, np.ndarray] | None = None,  # (even, odd) frame sums, (t, h, w) each
) -> ReconstructionResult:
    """Align and reconstruct a tilt series.

    1. Fourier-crop every micrograph by ``binning``, then phase-flip it with the defocus gradient
       across the tilted specimen when the request carries CTF estimates (``ctf_correction``);
    2. align (shifts by cross-correlation with cosine stretching, the tilt axis unless switched off,
       shifts along the axis against a common profile, the tilt-angle offset if switched on; per-tilt
       residuals by reprojection); tilts the ``outlier_rule`` calls outliers are left out (reason
       ``alignment-outlier``) of this and every later step, the others aligned again without them;
    3. resample the tilts used into the aligned frame (shifted, tilt axis along y);
    4. back-projection into ``thickness_angstroms`` at the nominal angles plus the offset: filtered
       (``filtered_back_projection``, the default) or torch-tomogram's weighted back-projection
       (``back_projection="torch-tomogram"``, the library reference);
    5. the half tomograms: of ``half_images`` (the even- and odd-frame sums of the same tilts) through
       steps 1, 3 and 4 with the micrographs' alignment, so that even + odd is the tomogram; without
       them, of the even and the odd tilts when ``parameters.half_tomograms``.
    """
    binned, binned_pixel = _binned_and_flipped(images, tilt_angles_degrees, parameters, device)
    tilts = torch.as_tensor(tilt_angles_degrees, dtype=torch.float32, device=device)
    thickness = max(1, math.ceil(parameters.thickness_angstroms / binned_pixel))
    full = _align(binned, tilts, binned_pixel, thickness, parameters)
    kept = torch.nonzero(~full.outliers).flatten()  # (k,) stack rows used
    rows = kept.cpu().numpy()
    alignment, binned, tilts = _rows(full, kept), binned[kept], tilts[kept]
    angles = np.asarray(tilt_angles_degrees, dtype=np.float64)[rows]  # (k,) nominal
    if half_images is not None:
        half_images = (half_images[0][rows], half_images[1][rows])
    offset = alignment.tilt_angle_offset_degrees
    used_degrees = angles + offset  # (k,) nominal + offset
    with torch.no_grad():
        aligned = align_images(binned, alignment.shifts_yx_pixels, alignment.axis_from_y_degrees)
        volume = _back_project(aligned, tilts + offset, thickness, parameters)
    halves, source = _half_tomograms(half_images, aligned, angles, alignment, thickness, parameters)
    reconstruction = (
        "filtered back-projection"
        if parameters.back_projection == "filtered"
        else f"torch-tomogram {torch_tomogram.__version__}"
    )
    scale = binned_pixel / parameters.pixel_size_angstroms  # binned pixels -> micrograph pixels
    shifts_xy = alignment.shifts_yx_pixels.flip(1).cpu().numpy().astype(np.float64) * scale
    return ReconstructionResult(
        tomogram=volume.cpu().numpy().astype(np.float32),
        aligned_stack=aligned.cpu().numpy().astype(np.float32),
        tilt_angles_degrees=used_degrees,
        shifts_xy_pixels=shifts_xy,
        tilt_axis_angle_degrees=alignment.axis_from_y_degrees + 90.0,
        pixel_spacing_angstroms=binned_pixel,
        tilt_angle_offset_degrees=offset,
        axis_agreement=None if math.isnan(alignment.agreement) else alignment.agreement,
        residuals_pixels=alignment.residuals_pixels.cpu().numpy().astype(np.float64) * scale,
        half_tomograms=halves,
        half_tomograms_from=source,
        stack_indices=rows,
        dropped={int(row): ALIGNMENT_OUTLIER for row in np.flatnonzero(full.outliers.cpu().numpy())},
        neighbour_correlations=alignment.neighbour_correlations.cpu().numpy().astype(np.float64),
        backend=f"torch-tiltxcorr + {reconstruction}"
        + (" + phase flip" if parameters.ctf is not None else ""),
    )
