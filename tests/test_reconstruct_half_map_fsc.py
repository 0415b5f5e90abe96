"""The half-map FSC resolution on seeded volumes with a known answer.

Two halves of one known volume, each with its own white noise: where the signal stops (a sharp band
limit) the FSC drops to zero, so the 0.143 crossing is the band limit; with a signal power falling
smoothly (a Gaussian), the crossing is where the signal-to-noise ratio S/N equals 0.143 / 0.857,
since the FSC of two halves is S / (S + N).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tiltstream.processors.reconstruct.half_map_fsc import (
    HALF_MAP_THRESHOLD,
    crossing_resolution_angstroms,
    half_map_fsc,
    reference_correlation,
)

SHAPE = (48, 64, 64)
VOXEL = 10.0  # Å


def _radius_cycles_per_voxel() -> np.ndarray:
    fz = np.fft.fftfreq(SHAPE[0])[:, None, None]
    fy = np.fft.fftfreq(SHAPE[1])[None, :, None]
    fx = np.fft.rfftfreq(SHAPE[2])[None, None, :]
    radius: np.ndarray = np.sqrt(fz**2 + fy**2 + fx**2)
    return radius


def _halves(amplitude: np.ndarray, noise_sd: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A white volume shaped by ``amplitude`` (on the rfft grid), plus independent noise per half."""
    rng = np.random.default_rng(seed)
    signal = np.fft.irfftn(np.fft.rfftn(rng.standard_normal(SHAPE)) * amplitude, s=SHAPE, axes=(0, 1, 2))
    return (signal + rng.normal(0, noise_sd, SHAPE), signal + rng.normal(0, noise_sd, SHAPE))


@pytest.mark.parametrize("band_limit_angstroms", [30.0, 50.0, 80.0])
def test_noisy_halves_of_a_band_limited_volume_resolve_to_the_band_limit(band_limit_angstroms: float) -> None:
    amplitude = (_radius_cycles_per_voxel() <= VOXEL / band_limit_angstroms).astype(float)
    even, odd = _halves(amplitude, noise_sd=0.5, seed=3)  # S/N 4 in the band: FSC 0.8, then 0
    result = half_map_fsc(even, odd, VOXEL)
    assert result.resolution_angstroms is not None
    print(f"band limit {band_limit_angstroms} Å: {result.resolution_angstroms:.1f} Å")
    # the library interpolates each voxel between the two nearest shells, which blurs the edge by up to
    # one shell (1/48 cycles per voxel) outwards: the crossing lies between the edge and a shell beyond
    shell = 1 / (48 * VOXEL)
    edge = 1 / band_limit_angstroms
    assert edge - shell / 4 < 1 / result.resolution_angstroms < edge + 1.25 * shell
    assert result.fsc[1:3].min() > 0.7  # well inside the band: S / (S + N) = 0.8


def test_the_crossing_is_where_the_signal_to_noise_ratio_is_the_thresholds() -> None:
    """S(k) = exp(-k² / 2 s²) against white noise N: S/N = 0.143/0.857 at k = s sqrt(2 ln(N' / 0.1669))."""
    s = 0.12  # cycles per voxel
    noise_sd = 0.25
    amplitude = np.exp(-(_radius_cycles_per_voxel() ** 2) / (4 * s**2))  # power exp(-k²/2s²)
    even, odd = _halves(amplitude, noise_sd, seed=5)
    ratio = HALF_MAP_THRESHOLD / (1 - HALF_MAP_THRESHOLD)
    expected = s * math.sqrt(2 * math.log(1 / (noise_sd**2 * ratio)))  # cycles per voxel
    result = half_map_fsc(even, odd, VOXEL)
    assert result.resolution_angstroms is not None
    print(f"expected {VOXEL / expected:.1f} Å, measured {result.resolution_angstroms:.1f} Å")
    assert 1 / result.resolution_angstroms == pytest.approx(expected / VOXEL, rel=0.06)


def test_uncorrelated_halves_give_no_resolution_and_perfect_ones_the_nyquist_bound() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):  # noise alone: no resolution, or a spurious one in the first shells (few voxels)
        noise = half_map_fsc(rng.standard_normal(SHAPE), rng.standard_normal(SHAPE), VOXEL)
        assert noise.resolution_angstroms is None or noise.resolution_angstroms > 100.0
    same = rng.standard_normal(SHAPE)
    assert half_map_fsc(same, same, VOXEL).resolution_angstroms == pytest.approx(2 * VOXEL)


def test_crossing_is_interpolated_and_bad_input_refused() -> None:
    frequencies = np.array([0.0, 0.01, 0.02, 0.03])
    assert crossing_resolution_angstroms(frequencies, np.array([1.0, 0.9, 0.243, 0.043])) == pytest.approx(
        40.0
    )
    with pytest.raises(ValueError, match="shapes"):
        half_map_fsc(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), VOXEL)
    with pytest.raises(ValueError, match="voxel"):
        half_map_fsc(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), 0.0)
    # the half-map threshold is where the full map's correlation with the truth is one half
    assert reference_correlation(np.array([HALF_MAP_THRESHOLD]))[0] == pytest.approx(0.5, abs=1e-3)


def test_the_half_map_crossing_is_where_the_full_map_meets_the_truth_at_one_half() -> None:
    """The sqrt(2) relation on a known volume: even + odd against the noise-free signal falls below 0.5
    where the two halves' FSC falls below 0.143."""
    amplitude = np.exp(-(_radius_cycles_per_voxel() ** 2) / (4 * 0.12**2))
    rng = np.random.default_rng(9)
    signal = np.fft.irfftn(np.fft.rfftn(rng.standard_normal(SHAPE)) * amplitude, s=SHAPE, axes=(0, 1, 2))
    even, odd = (signal + rng.normal(0, 0.25, SHAPE) for _ in range(2))
    halves = half_map_fsc(even, odd, VOXEL)
    truth = half_map_fsc(even + odd, signal, VOXEL)
    full = crossing_resolution_angstroms(truth.frequencies_per_angstrom, truth.fsc, 0.5)
    assert full is not None
    print(f"halves at 0.143: {halves.resolution_angstroms:.1f} Å, full map vs truth at 0.5: {full:.1f} Å")
    assert halves.resolution_angstroms == pytest.approx(full, rel=0.05)
    # and shell by shell, C_ref from the halves predicts the full map's correlation with the truth
    band = slice(1, 12)
    np.testing.assert_allclose(reference_correlation(halves.fsc)[band], truth.fsc[band], atol=0.05)
