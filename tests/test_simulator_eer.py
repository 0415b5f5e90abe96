"""The simulator's EER writer: tifffile and eerfile read back exactly the electrons it wrote."""

from __future__ import annotations

from pathlib import Path

import eerfile
import numpy as np
import pytest
import tifffile

from tiltstream.connectors.simulator.eer_writer import EER_COMPRESSION, encode_eer, encode_eer_frame
from tiltstream.connectors.simulator.movie_files import encode_movie

SHAPE = (32, 48)


def _events(seed: int, frames: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Seeded electrons (quarter-pixel positions), at most one per pixel per frame, and their counts
    on the 4x sub-pixel grid ``(t, 4h, 4w)``. Frame 1 has the edge cases: the first and last pixels, a
    gap of exactly 127 and of 254 pixels; frame 2 has no electron."""
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    events, truth = [], np.zeros((frames, 4 * h, 4 * w), np.int64)
    for t in range(frames):
        pixels = rng.choice(h * w, int(rng.integers(1, h * w // 3)), replace=False)
        if t == 1:
            pixels = np.array([0, 128, 128 + 128 + 127, 1000, h * w - 1])
        if t == 2:
            pixels = np.array([], np.int64)
        y = (pixels // w) * 4 + rng.integers(0, 4, pixels.size)
        x = (pixels % w) * 4 + rng.integers(0, 4, pixels.size)
        events.append((y, x))
        truth[t, y, x] += 1
    return events, truth


def _binned(truth: np.ndarray, factor: int) -> np.ndarray:
    t, h, w = truth.shape
    binned: np.ndarray = truth.reshape(t, h // factor, factor, w // factor, factor).sum(axis=(2, 4))
    return binned


def test_tifffile_and_eerfile_read_back_the_events(tmp_path: Path) -> None:
    events, truth = _events(seed=7, frames=12)
    path = tmp_path / "movie.eer"
    path.write_bytes(encode_eer(events, SHAPE, pixel_size_angstroms=1.5))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_eer
        assert tif.pages.first.compression == EER_COMPRESSION
        frames = tif.asarray().astype(np.int64)  # (t, h, w)
    physical = _binned(truth, 4)
    assert np.array_equal(frames, physical)
    assert np.array_equal(eerfile.read(path).astype(np.int64), physical)
    for superres, factor in ((1, 2), (2, 1)):  # 2x and 4x sub-pixel rendering
        with tifffile.TiffFile(path, superres=superres) as tif:
            assert np.array_equal(tif.asarray().astype(np.int64), _binned(truth, factor))


def test_eerfile_header_and_dose_grouping_agree(tmp_path: Path) -> None:
    events, truth = _events(seed=3, frames=12)
    path = tmp_path / "movie.eer"
    path.write_bytes(encode_eer(events, SHAPE, pixel_size_angstroms=2.0))
    header = eerfile.data_models.EERHeader.from_file(path)
    assert header.n_frames == 12
    assert (header.image_height_pixels, header.image_width_pixels) == SHAPE
    assert header.pixel_spacing_height_angstroms == pytest.approx(2.0)
    assert header.total_dose_electrons_per_pixel == pytest.approx(
        truth.sum() / (SHAPE[0] * SHAPE[1]), rel=1e-5
    )
    grouped = eerfile.render(
        path, dose_per_output_frame=3 * header.dose_per_frame_electrons_per_square_angstrom
    )
    expected = _binned(truth, 4).reshape(4, 3, *SHAPE).sum(axis=1)
    assert np.array_equal(grouped.astype(np.int64), expected)


def test_two_electrons_in_one_pixel_of_one_frame_are_refused() -> None:
    with pytest.raises(ValueError, match="at most one per pixel"):
        encode_eer_frame(np.array([0, 1]), np.array([0, 2]), SHAPE)  # both in pixel (0, 0)


def test_simulator_movies_as_eer_group_back_to_their_frames(tmp_path: Path) -> None:
    """``encode_movie(..., "eer")``: the frames' electrons spread over electron frames; groups of
    ``eer_frames_per_frame`` sum back to the frames (counts above it clipped)."""
    frames = np.random.default_rng(9).poisson(0.7, size=(4, *SHAPE)).astype(np.uint8)  # (t, h, w)
    frames[0, 0, 0] = 9  # more electrons than electron frames: clipped to 5
    path = tmp_path / "tilt.eer"
    path.write_bytes(encode_movie(frames, "eer", pixel_size_angstroms=1.5, eer_frames_per_frame=5, seed=1))
    electron_frames = eerfile.read(path).astype(np.int64)  # (t * 5, h, w)
    assert electron_frames.shape == (20, *SHAPE)
    assert electron_frames.max() == 1
    expected = np.minimum(frames, 5).astype(np.int64)
    assert np.array_equal(electron_frames.reshape(4, 5, *SHAPE).sum(axis=1), expected)
