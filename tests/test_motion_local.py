"""The local (patch) motion model against the simulator's doming, the library's local fit and exact sums.

The simulator's doming (``connectors/simulator/doming.py``) moves the content radially out of a bulge,
most in the first frames, on top of the whole-frame drift; its truth is recorded per tilt. The local
model must follow it within 0.5 px over the whole frame where the whole-frame model cannot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from motioncorr_fixtures import simulated_tilt

from tiltstream.connectors.simulator.ground_truth import TiltTruth
from tiltstream.connectors.simulator.truth_comparison import field_rms_pixels, true_displacement_pixels
from tiltstream.processors.motioncorr.builtin import (
    LOCAL_BACKEND,
    binned_spectra,
    correct_movie_builtin,
    fourier_sums,
    local_motion,
)
from tiltstream.processors.motioncorr.global_shifts import estimate_global_shifts
from tiltstream.processors.motioncorr.library import library_field
from tiltstream.processors.motioncorr.local_field import smooth_local_shifts, spline_weights, temporal_basis
from tiltstream.processors.motioncorr.local_shifts import LocalShifts, patch_starts
from tiltstream.processors.motioncorr.local_sums import displacement_field, local_sums
from tiltstream.processors.motioncorr.result import MotionParameters

CPU = torch.device("cpu")
STEP = 16  # field compared every STEP pixels


def _positions(size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size:STEP, 0:size:STEP]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)  # (n, 2) xy


def _on_positions(field_yx: torch.Tensor) -> np.ndarray:
    """``(t, 2, h, w)`` yx field -> ``(t, n, 2)`` xy at :func:`_positions`."""
    t = field_yx.shape[0]
    sampled = field_yx[:, :, ::STEP, ::STEP].reshape(t, 2, -1).permute(0, 2, 1).flip(-1)
    return sampled.numpy().astype(np.float64)


def _fields(
    movie: np.ndarray, pixel: float, patches: int
) -> tuple[torch.Tensor, torch.Tensor, MotionParameters]:
    """Whole-frame displacement (t, 2) and the local model's field (t, 2, h, w), as the backend forms them."""
    parameters = MotionParameters(pixel, 1.0, 0.0, 300.0, patches_x=patches, patches_y=patches)
    with torch.no_grad():
        spectra, shape = binned_spectra(torch.from_numpy(movie), 1)
        rigid = estimate_global_shifts(spectra, shape, pixel, curvature_pixels=1.5 / pixel)
        local = local_motion(spectra, shape, rigid, parameters)
        field = displacement_field(local, rigid, shape, slice(0, movie.shape[0]))
    return rigid, field, parameters


def _errors(movie: np.ndarray, truth: TiltTruth, pixel: float) -> tuple[float, float]:
    """RMS field error (px) over frames and the whole frame: local model, whole-frame model."""
    rigid, field, _ = _fields(movie, pixel, 5)
    true = true_displacement_pixels(truth, _positions(movie.shape[-1]))
    rigid_everywhere = np.repeat(rigid.flip(-1).numpy()[:, None, :].astype(np.float64), len(true[0]), axis=1)
    return field_rms_pixels(_on_positions(field), true), field_rms_pixels(rigid_everywhere, true)


@pytest.mark.parametrize(
    ("seed", "frames", "dose_per_frame"),
    [(1, 10, 1.0), (2, 20, 0.5)],
)
def test_local_model_recovers_doming_the_global_model_does_not(
    tmp_path: Path, seed: int, frames: int, dose_per_frame: float
) -> None:
    movie, truth, pixel = simulated_tilt(tmp_path, seed, 1024, frames, dose_per_frame, doming_angstroms=6.0)
    assert truth.doming is not None  # the truth is recorded beside the session
    local, rigid = _errors(movie, truth, pixel)
    assert local <= 0.5
    assert rigid > 0.5


def test_without_local_motion_the_local_model_adds_little(tmp_path: Path) -> None:
    movie, truth, pixel = simulated_tilt(tmp_path, 3, 1024, 10, 1.0, doming_angstroms=0.0)
    local, rigid = _errors(movie, truth, pixel)
    assert rigid <= 0.3
    assert local <= rigid + 0.2


def test_library_local_fit_is_the_reference(tmp_path: Path) -> None:
    """torch-motion-correction's local fit on the same movie: both follow the doming better than the
    whole-frame model does, ours at least as closely as the library, and the two agree within 1 px."""
    movie, truth, pixel = simulated_tilt(tmp_path, 4, 512, 8, 2.0, doming_angstroms=6.0)
    rigid, ours, parameters = _fields(movie, pixel, 5)
    field = library_field(torch.from_numpy(movie), pixel, rigid, parameters, CPU)
    t = movie.shape[0]
    with torch.no_grad():
        library = torch.stack([field.evaluate_at_t(i / (t - 1), movie.shape[1:]) for i in range(t)]) / pixel
    true = true_displacement_pixels(truth, _positions(movie.shape[-1]))
    rigid_everywhere = np.repeat(rigid.flip(-1).numpy()[:, None, :].astype(np.float64), len(true[0]), axis=1)
    error_rigid = field_rms_pixels(rigid_everywhere, true)
    error_ours = field_rms_pixels(_on_positions(ours), true)
    error_library = field_rms_pixels(_on_positions(library), true)
    assert error_library < error_rigid
    assert error_ours <= error_library
    assert field_rms_pixels(_on_positions(ours), _on_positions(library)) <= 1.0


@pytest.mark.parametrize("weighting", [True, False])
def test_resampled_sums_equal_the_fourier_sums_for_whole_pixel_shifts(weighting: bool) -> None:
    """With no local residual and whole-pixel shifts, resampling is exact: the sums equal the Fourier
    path's away from the edges (where one wraps and the other repeats the border)."""
    rng = np.random.default_rng(5)
    movie = torch.from_numpy(rng.poisson(3.0, (6, 128, 160)).astype(np.float32))
    displacement = torch.from_numpy(rng.integers(-4, 5, (6, 2)).astype(np.float32))
    parameters = MotionParameters(1.2, 1.0 if weighting else 0.0, 0.5, 300.0, patches_x=3, patches_y=3)
    still = LocalShifts(
        centres_y_pixels=torch.tensor([20.0, 64.0, 108.0]),
        centres_x_pixels=torch.tensor([25.0, 80.0, 135.0]),
        residual_pixels=torch.zeros(3, 3, 6, 2),
        variance_pixels2=torch.ones(3, 3, 6, 2),
    )
    summed, weighted, halves = local_sums(movie, displacement, still, 1.2, parameters)
    expected, expected_weighted, expected_halves = fourier_sums(
        torch.fft.rfft2(movie), (128, 160), displacement, 1.2, parameters
    )
    inner = (slice(8, -8), slice(8, -8))
    torch.testing.assert_close(summed[inner], expected[inner], atol=1e-3, rtol=1e-5)
    assert halves is not None
    assert expected_halves is not None
    torch.testing.assert_close(halves[0][inner], expected_halves[0][inner], atol=0.05, rtol=0.01)
    assert (weighted is None) == (not weighting) == (expected_weighted is None)
    if weighted is not None and expected_weighted is not None:
        # the dose filter spreads a pixel over its neighbours: compare well inside, loosely
        core = (slice(24, -24), slice(24, -24))
        assert float((weighted - expected_weighted)[core].abs().max()) < 0.05 * float(expected_weighted.std())


def test_builtin_backend_uses_the_local_model_with_patches(tmp_path: Path) -> None:
    movie, _, pixel = simulated_tilt(tmp_path, 6, 256, 6, 2.0, doming_angstroms=3.0)
    parameters = MotionParameters(pixel, 2.0, 0.0, 300.0, patches_x=3, patches_y=3)
    result = correct_movie_builtin(movie, None, parameters, CPU)
    assert result.backend == LOCAL_BACKEND
    assert result.summed.shape == result.dose_weighted.shape == movie.shape[1:]  # type: ignore[union-attr]
    assert np.isfinite(result.dose_weighted).all()  # type: ignore[arg-type]
    assert result.summed.sum() == pytest.approx(movie.sum(), rel=0.01)  # resampling keeps the counts


@pytest.mark.parametrize(("length", "count"), [(512, 5), (171, 5), (64, 2), (100, 1)])
def test_patches_overlap_by_half_and_cover_the_frame(length: int, count: int) -> None:
    starts, size = patch_starts(length, count)
    assert len(starts) == count
    assert size % 2 == 0
    assert size <= length
    assert int(starts[0]) == 0
    assert int(starts[-1]) + size == length or count == 1
    if count > 1:
        assert float((starts[1:] - starts[:-1]).float().mean()) == pytest.approx(size / 2, abs=1.5)


def test_spline_weights_reproduce_lines_inside_and_beyond_the_centres() -> None:
    centres = torch.tensor([10.0, 40.0, 70.0, 100.0])
    positions = torch.arange(0.0, 120.0)
    weights = spline_weights(centres, positions)  # (120, 4)
    line = 0.3 * centres - 2.0
    torch.testing.assert_close(weights @ line, 0.3 * positions - 2.0, atol=1e-4, rtol=0)
    torch.testing.assert_close(spline_weights(centres, centres), torch.eye(4), atol=1e-6, rtol=0)
    assert torch.all(spline_weights(centres[:1], positions) == 1)


def test_temporal_basis_is_mean_free_and_orthogonal() -> None:
    basis = temporal_basis(10)
    assert basis.shape == (10, 3)
    np.testing.assert_allclose(basis.mean(axis=0), 0.0, atol=1e-12)
    gram = basis.T @ basis
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-12)
    assert temporal_basis(2).shape == (2, 1)


def test_smoothing_removes_an_outlier_patch_and_keeps_its_neighbours() -> None:
    """A patch locked onto noise (far off, and claiming to be sure) must not bend its neighbours."""
    rng = np.random.default_rng(8)
    t = 10
    profile = torch.from_numpy(temporal_basis(t)[:, 0]).float()  # (t,)
    y, x = torch.meshgrid(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 5), indexing="ij")
    amplitude = torch.stack([0.8 * x + 0.3 * y, 0.5 * y - 0.2 * x * y], dim=-1)  # (5, 5, 2) smooth
    truth = amplitude[:, :, None, :] * profile[None, None, :, None]  # (5, 5, t, 2)
    noisy = truth + 0.2 * torch.from_numpy(rng.standard_normal(truth.shape)).float()
    noisy[1, 3] += 6.0 * profile[:, None]  # the outlier
    shifts = LocalShifts(
        centres_y_pixels=torch.linspace(50, 450, 5),
        centres_x_pixels=torch.linspace(50, 450, 5),
        residual_pixels=noisy,
        variance_pixels2=torch.full_like(noisy, 0.04),
    )
    smooth = smooth_local_shifts(shifts, curvature_space_pixels=0.3).residual_pixels
    error = (smooth - truth).square().sum(-1).sqrt().mean(-1)  # (5, 5) per patch
    assert float(error[1, 3]) < 1.0  # the outlier pulled back to its neighbours
    neighbours = error.clone()
    neighbours[1, 3] = 0
    assert float(neighbours.max()) < 0.3
