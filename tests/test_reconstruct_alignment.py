"""Fiducial-less alignment against the simulator's truth, across seeds (known answers).

256² micrographs at 5 Å, 41 tilts ±60°, binned 4 (64² at 20 Å), a 400 Å slab without gold; random
specimen shifts of 60 Å per axis. Shifts are checked after removing the one thing fiducial-less
alignment cannot know, the height of the plane it follows (``z sin(tilt)`` across the axis).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reconstruct_fixtures import SimulatedSeries, simulate_series
from torch_fourier_rescale import fourier_rescale_2d

from tiltstream.processors.reconstruct.alignment import (
    AlignmentOptions,
    TiltSeriesAlignment,
    align_tilt_series,
)

BINNED_ANGSTROMS = 20.0


def _align(series: SimulatedSeries, nominal_axis_from_x_degrees: float, refine: bool) -> TiltSeriesAlignment:
    with torch.no_grad():
        binned, _ = fourier_rescale_2d(
            torch.from_numpy(series.images), series.pixel_size_angstroms, BINNED_ANGSTROMS
        )  # (41, 64, 64)
    return align_tilt_series(
        binned,
        torch.from_numpy(series.tilt_angles_degrees),
        nominal_axis_from_x_degrees - 90.0,
        BINNED_ANGSTROMS,
        AlignmentOptions(thickness_pixels=40, refine_axis=refine, axis_search_degrees=3.0),
    )


def shift_errors(series: SimulatedSeries, alignment: TiltSeriesAlignment) -> tuple[float, np.ndarray]:
    """Height (binned pixels) and the per-tilt shift error after removing it, ``(t, 2)`` x, y."""
    found = alignment.shifts_yx_pixels.numpy().astype(np.float64)[:, ::-1]  # (t, 2) x, y
    truth = -series.specimen_shifts_xy_angstroms / BINNED_ANGSTROMS  # the shift that undoes it
    error = found - truth
    phi = np.radians(series.tilt_axis_angle_degrees)
    across = np.array([-np.sin(phi), np.cos(phi)])
    sines = np.sin(np.radians(series.tilt_angles_degrees))
    height = float((error @ across) @ sines / (sines @ sines))
    return height, error - np.outer(height * sines, across)


# Seeds 3 and 6 failed before the shifts were re-estimated on centred images and matched along the
# axis (largest errors 1.11 and 0.78 binned pixels); measured now on seeds 0-11: largest 0.18-0.48,
# RMS 0.10-0.23.
@pytest.mark.parametrize("seed", [0, 2, 3, 6, 9])
def test_shifts_are_within_one_binned_pixel_of_the_truth_for_any_seed(seed: int) -> None:
    series = simulate_series(seed)
    alignment = _align(series, series.tilt_axis_angle_degrees, refine=False)
    height, residual = shift_errors(series, alignment)
    largest = float(np.abs(residual).max())
    rms = float(np.sqrt((residual**2).sum(axis=1).mean()))
    print(f"seed {seed}: height {height:+.2f}, largest {largest:.2f}, RMS {rms:.2f} binned pixels")
    assert abs(height) < 2.0  # the slab is 20 binned pixels thick
    assert largest <= 1.0
    assert rms < 0.4
    # every tilt agrees with the reprojection of the others to well under a pixel
    assert float(alignment.residuals_pixels.mean()) < 0.5
    assert alignment.agreement > 0.8


@pytest.mark.parametrize(
    ("seed", "true_axis_from_x_degrees", "nominal_error_degrees"),
    [(0, 85.0, 2.0), (4, 85.0, -2.5), (5, -3.0, -1.5)],
)
# measured (these and seeds 1-3 at 85° with the nominal 2° off, 1 at -3°): 0.04-0.73° off
def test_the_tilt_axis_is_refined_to_within_one_degree(
    seed: int, true_axis_from_x_degrees: float, nominal_error_degrees: float
) -> None:
    series = simulate_series(seed, tilt_axis_angle_degrees=true_axis_from_x_degrees)
    nominal = true_axis_from_x_degrees + nominal_error_degrees
    alignment = _align(series, nominal, refine=True)
    error = alignment.axis_from_y_degrees + 90.0 - true_axis_from_x_degrees
    print(f"seed {seed}: axis {true_axis_from_x_degrees}°, nominal {nominal}°, refined off by {error:+.2f}°")
    assert abs(error) < 1.0
    _, residual = shift_errors(series, alignment)
    assert float(np.abs(residual).max()) <= 1.0  # the shifts follow the refined axis
