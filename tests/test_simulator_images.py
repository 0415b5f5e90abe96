"""The simulator's images obey the physics its ground truth states: drift, CTF, dose, faults."""

from __future__ import annotations

import math
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import scipy.fft
import tifffile
from source_fixtures import simulate_small

from tiltstream.connectors.simulator import SimulatorSettings
from tiltstream.connectors.simulator.imaging import CtfParameters, PoissonSampler, ctf_2d
from tiltstream.connectors.simulator.movie_files import encode_movie
from tiltstream.connectors.simulator.phantom import load_phantom, render_volume
from tiltstream.connectors.simulator.projection import interaction_constant, project_phantom
from tiltstream.connectors.source import CorruptMovieError
from tiltstream.connectors.source.movie_check import inspect_movie


def _frames(path: Path) -> np.ndarray:
    return tifffile.imread(path).astype(np.float32)  # (t, h, w)


def _phase_correlation_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(x, y) shift that moves a onto b, to a tenth of a pixel (parabolic peak fit)."""
    fa, fb = np.fft.fft2(a - a.mean()), np.fft.fft2(b - b.mean())
    cross = fb * np.conj(fa)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(a.shape[1]), np.fft.fftfreq(a.shape[0])))
    corr = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-6) * np.exp(-((k / 0.1) ** 2))))
    iy, ix = np.unravel_index(np.argmax(corr), corr.shape)

    def refine(c_minus: float, c0: float, c_plus: float) -> float:
        return 0.5 * (c_minus - c_plus) / (c_minus - 2 * c0 + c_plus)

    h, w = corr.shape
    dy = iy + refine(corr[iy - 1, ix], corr[iy, ix], corr[(iy + 1) % h, ix])
    dx = ix + refine(corr[iy, ix - 1], corr[iy, ix], corr[iy, (ix + 1) % w])
    return (dx - w if dx > w / 2 else dx, dy - h if dy > h / 2 else dy)


def test_same_seed_same_session_other_seed_other_session(tmp_path: Path) -> None:
    a = simulate_small(tmp_path / "a", "retake:1:1", max_tilt_degrees=3.0)
    b = simulate_small(tmp_path / "b", "retake:1:1", max_tilt_degrees=3.0)
    c = simulate_small(tmp_path / "c", "retake:1:1", max_tilt_degrees=3.0, seed=8)
    for tilt in a[0].tilts:
        one, two = (tmp_path / x / tilt.movie for x in "ab")
        assert one.read_bytes() == two.read_bytes()
        assert (tmp_path / "c" / tilt.movie).read_bytes() != one.read_bytes()
    assert (tmp_path / "a" / "Position_1.mdoc").read_text() == (
        tmp_path / "b" / "Position_1.mdoc"
    ).read_text()
    assert a[0].tilts[0].defocus_u_angstroms == b[0].tilts[0].defocus_u_angstroms
    assert a[0].tilts[0].defocus_u_angstroms != c[0].tilts[0].defocus_u_angstroms


def test_frames_drift_as_the_truth_says(tmp_path: Path) -> None:
    (truth,) = simulate_small(
        tmp_path, max_tilt_degrees=3.0, frames=4, drift_angstroms=40.0, dose_per_tilt_e_per_angstrom2=400.0
    )
    for tilt in truth.tilts:
        frames = _frames(tmp_path / tilt.movie)
        measured = _phase_correlation_shift(frames[0], frames[-1])
        assert measured == pytest.approx(tuple(tilt.frame_shifts_pixels[-1]), abs=0.5)
        assert math.hypot(*tilt.frame_shifts_pixels[-1]) > 3  # a real drift was measured


def test_thon_rings_follow_the_true_defocus(tmp_path: Path) -> None:
    (truth,) = simulate_small(
        tmp_path, size_pixels=512, frames=2, max_tilt_degrees=3.0, dose_per_tilt_e_per_angstrom2=60.0
    )
    tilt = truth.tilts[0]
    image = _frames(tmp_path / tilt.movie).sum(axis=0)
    spectrum = np.abs(scipy.fft.rfft2(image - image.mean())) ** 2  # (h, w//2+1)
    ky = scipy.fft.fftfreq(512, truth.pixel_size_angstroms)[:, None]
    kx = scipy.fft.rfftfreq(512, truth.pixel_size_angstroms)[None, :]
    band = (np.hypot(kx, ky) > 1 / 40) & (np.hypot(kx, ky) < 1 / 6)

    def fit(defocus_offset: float) -> float:
        ctf = ctf_2d(
            (512, 512),
            truth.pixel_size_angstroms,
            CtfParameters(
                tilt.defocus_u_angstroms + defocus_offset,
                tilt.defocus_v_angstroms + defocus_offset,
                tilt.astigmatism_angle_degrees,
                truth.voltage_kv,
                truth.spherical_aberration_mm,
                truth.amplitude_contrast,
                0.0,
            ),
        )
        return float(np.corrcoef(spectrum[band], (ctf**2)[band])[0, 1])

    true_fit = fit(0.0)
    assert true_fit > 0.1
    for wrong in (-8000.0, -3000.0, 3000.0, 8000.0):
        assert fit(wrong) < true_fit - 0.05


def test_dose_tilt_and_dark_tilt_counts(tmp_path: Path) -> None:
    settings = SimulatorSettings()
    (truth,) = simulate_small(tmp_path, "dark:1:3", max_tilt_degrees=60.0, tilt_step_degrees=30.0)
    phantom = load_phantom(tmp_path / truth.phantom)
    means = {
        t.nominal_tilt_angle_degrees: _frames(tmp_path / t.movie).sum(axis=0).mean() for t in truth.tilts
    }
    vacuum = settings.dose_per_tilt_e_per_angstrom2 * truth.pixel_size_angstroms**2
    zero_loss = vacuum * math.exp(-phantom.thickness_angstroms / settings.inelastic_mean_free_path_angstroms)
    assert means[0.0] == pytest.approx(zero_loss, rel=0.1)
    assert means[60.0] < 0.8 * means[30.0] < 0.8 * means[0.0]  # the slab is thicker when tilted
    dark = next(t for t in truth.tilts if t.dark)
    assert means[dark.nominal_tilt_angle_degrees] < 0.05 * means[0.0]
    assert dark.dose_e_per_angstrom2 < 0.1


def test_poisson_sampler_has_poisson_statistics() -> None:
    rng = np.random.default_rng(3)
    sampler = PoissonSampler(4.0)
    for mean in (0.05, 0.7, 3.0):
        counts = sampler.sample(np.full((400, 400), mean, np.float32), rng).astype(np.float64)
        assert counts.mean() == pytest.approx(mean, rel=0.02)
        assert counts.var() == pytest.approx(mean, rel=0.04)
        assert (counts == 0).mean() == pytest.approx(math.exp(-mean), abs=0.005)


def test_broken_and_partial_movies_are_never_whole(tmp_path: Path) -> None:
    truths = simulate_small(
        tmp_path, "truncated:1:1", "corrupt:1:2", "missing:1:3", "cancel:2:4", positions=2
    )
    (p1, p2) = truths
    assert len(p2.tilts) == 4
    assert p2.cancelled_after_tilts == 4
    assert inspect_movie(tmp_path / p1.tilts[0].movie, 3).frame_count == 3
    for tilt in p1.tilts[1:3]:
        with pytest.raises(CorruptMovieError):
            inspect_movie(tmp_path / tilt.movie, 3)
    assert not (tmp_path / p1.tilts[3].movie).exists()
    # every prefix of a movie being written is refused, in both formats
    frames = np.random.default_rng(0).integers(0, 4, (3, 64, 64)).astype(np.uint8)
    for fmt in ("tiff", "mrc"):
        data = encode_movie(frames, fmt, 1.5)
        path = tmp_path / f"partial.{fmt}"
        for cut in range(0, len(data), max(len(data) // 23, 1)):
            path.write_bytes(data[:cut])
            with pytest.raises(CorruptMovieError):
                inspect_movie(path, 3)
        path.write_bytes(data)
        assert inspect_movie(path, 3).frame_count == 3
        with pytest.raises(CorruptMovieError, match="NumSubFrames"):
            inspect_movie(path, 4)
    with mrcfile.open(tmp_path / "partial.mrc") as mrc:
        assert mrc.data.shape == (3, 64, 64)
        assert mrc.voxel_size.x == pytest.approx(1.5)


def test_phantom_volume_matches_its_projection(tmp_path: Path) -> None:
    (truth,) = simulate_small(tmp_path, max_tilt_degrees=3.0)
    phantom = load_phantom(tmp_path / truth.phantom)
    voxel = 8.0
    depth = int(phantom.thickness_angstroms / voxel) + 40
    volume = render_volume(phantom, (depth, 96, 96), voxel)  # (z, y, x) volts above ice
    phase, _ = project_phantom(
        phantom,
        tilt_degrees=0.0,
        tilt_axis_angle_degrees=truth.nominal_tilt_axis_angle_degrees,
        shape=(96, 96),
        pixel_size_angstroms=voxel,
        specimen_shift_angstroms=(0.0, 0.0),
        voltage_kv=truth.voltage_kv,
        inelastic_mean_free_path_angstroms=3800.0,
        texture_radians=0.0,
        rng=np.random.default_rng(0),
    )
    projected = phase / interaction_constant(truth.voltage_kv)  # (h, w) volt-angstroms
    summed = volume.sum(axis=0) * voxel
    assert summed.std() > 0
    assert np.corrcoef(projected.ravel(), summed.ravel())[0, 1] > 0.95
    assert summed.sum() == pytest.approx(projected.sum(), rel=0.1)
