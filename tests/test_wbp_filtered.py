"""Filtered back-projection against the phantom and against torch-tomogram's weighted back-projection.

The simulator's seeded series (256² micrographs at 5 Å, 41 tilts, ±60°), Fourier-binned to 20 Å and
resampled with the true shifts and axis, is reconstructed 40 voxels deep by both back-projections.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reconstruct_fixtures import SimulatedSeries, phantom_in_tomogram_frame, simulate_series
from torch_fourier_rescale import fourier_rescale_2d
from torch_fourier_shell_correlation import fourier_shell_correlation

from tiltstream.processors.reconstruct.builtin import weighted_back_projection
from tiltstream.processors.reconstruct.filtered_back_projection import filtered_back_projection
from tiltstream.processors.reconstruct.geometry import align_images

DEPTH = 40


@pytest.fixture(scope="module")
def series() -> SimulatedSeries:
    return simulate_series(seed=1)


@pytest.fixture(scope="module")
def aligned(series: SimulatedSeries) -> torch.Tensor:  # (t, 64, 64)
    binned, _ = fourier_rescale_2d(torch.from_numpy(series.images), 5.0, 20.0)
    truth = torch.from_numpy(-series.specimen_shifts_xy_angstroms[:, ::-1].copy() / 20.0).float()
    return align_images(binned, truth, series.tilt_axis_angle_degrees - 90.0)


@pytest.fixture(scope="module")
def reference(series: SimulatedSeries) -> np.ndarray:
    return phantom_in_tomogram_frame(series, (DEPTH, 64, 64), 20.0)


def _mean_fsc(volume: np.ndarray, reference: np.ndarray) -> float:
    fsc = fourier_shell_correlation(torch.tensor(volume), torch.tensor(reference)).numpy()
    return float(fsc[1:11].mean())


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_filtered_back_projection_matches_the_phantom_and_the_library(
    series: SimulatedSeries, aligned: torch.Tensor, reference: np.ndarray
) -> None:
    tilts = torch.from_numpy(series.tilt_angles_degrees).float()
    ours = filtered_back_projection(aligned, tilts, DEPTH).numpy()
    library = weighted_back_projection(aligned, tilts, DEPTH, 64).numpy()
    assert ours.shape == library.shape == (DEPTH, 64, 64)
    assert ours.dtype == np.float32
    fsc, library_fsc = _mean_fsc(ours, reference), _mean_fsc(library, reference)
    print(f"mean FSC 1-10: filtered {fsc:.3f}, torch-tomogram {library_fsc:.3f}")
    # measured: 0.744 against 0.730; voxel correlation 0.769 against 0.762; with each other 0.970
    assert fsc >= library_fsc
    assert _correlation(ours, reference) >= _correlation(library, reference)
    assert _correlation(ours, library) > 0.9


def test_the_orientation_is_the_phantoms(
    series: SimulatedSeries, aligned: torch.Tensor, reference: np.ndarray
) -> None:
    tilts = torch.from_numpy(series.tilt_angles_degrees).float()
    ours = filtered_back_projection(aligned, tilts, DEPTH).numpy()
    fsc = _mean_fsc(ours, reference)
    flipped_angles = _mean_fsc(filtered_back_projection(aligned, -tilts, DEPTH).numpy(), reference)
    flipped_depth = _mean_fsc(np.ascontiguousarray(ours[::-1]), reference)
    print(f"mean FSC 1-10: {fsc:.3f}, angles negated {flipped_angles:.3f}, depth flipped {flipped_depth:.3f}")
    assert fsc > 0.6  # measured 0.744
    assert flipped_angles < fsc - 0.2  # measured 0.364
    assert flipped_depth < fsc - 0.2


def test_depth_blocks_give_the_same_volume(
    series: SimulatedSeries, aligned: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiltstream.processors.reconstruct.filtered_back_projection as module

    tilts = torch.from_numpy(series.tilt_angles_degrees).float()
    whole = filtered_back_projection(aligned, tilts, DEPTH)
    monkeypatch.setattr(module, "_MAX_NONZEROS", 2 * 41 * 64 * 7)  # blocks of 7 depths: 6 blocks
    blocked = filtered_back_projection(aligned, tilts, DEPTH)
    assert torch.allclose(whole, blocked, atol=1e-6 * float(whole.abs().max()))


def test_a_point_reconstructs_at_its_place() -> None:
    # a point at (z, x) = (+6, -5) from the centre ((d - 1) / 2, w // 2) projects to x cos + z sin
    angles = torch.linspace(-60.0, 60.0, 61)
    radians = torch.deg2rad(angles)
    d, h, w = 31, 4, 48
    stack = torch.zeros(61, h, w)
    position = -5.0 * torch.cos(radians) + 6.0 * torch.sin(radians) + w // 2
    left = torch.floor(position).long()
    fraction = position - left
    stack[torch.arange(61), :, left] = (1 - fraction)[:, None]
    stack[torch.arange(61), :, left + 1] = fraction[:, None]
    volume = filtered_back_projection(stack, angles, d)
    peak = torch.nonzero(volume[:, 1] == volume[:, 1].max())[0]
    assert tuple(int(i) for i in peak) == (15 + 6, 24 - 5)
