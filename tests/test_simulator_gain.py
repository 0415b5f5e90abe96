"""The simulator's detector gain: the frames lose electrons by the pixel's sensitivity, and the gain
reference it writes beside them, read and turned by the motion corrector's reader (the other side),
makes them flat again."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import tifffile
from source_fixtures import simulate_small

from tiltstream.connectors.simulator.gain_reference import (
    detector_sensitivity,
    stored_gain_reference,
    write_gain,
)
from tiltstream.processors.motioncorr.movie_io import read_gain

SHAPE = (48, 64)
TURNS = list(itertools.product(range(4), range(3)))


@pytest.mark.parametrize(("gain_format", "suffix"), [("mrc", ".mrc"), ("tiff", ".tiff"), ("gain", ".gain")])
@pytest.mark.parametrize(("rotation", "flip"), TURNS)
def test_reader_turns_the_stored_reference_back_to_the_frames(
    tmp_path: Path, gain_format: str, suffix: str, rotation: int, flip: int
) -> None:
    sensitivity = detector_sensitivity(SHAPE, seed=3)
    path = tmp_path / f"CountRef_x{suffix}"
    write_gain(path, stored_gain_reference(sensitivity, rotation, flip), gain_format)  # type: ignore[arg-type]
    with path.open("rb") as stream:
        gain = read_gain(stream, SHAPE, rotation, flip)
    np.testing.assert_allclose(gain, 1 / sensitivity, rtol=1e-6)


def test_every_turn_of_the_reference_is_told_apart() -> None:
    """No rotation or flip of the sensitivity looks like another: a wrong one cannot pass unseen."""
    sensitivity = detector_sensitivity((64, 64), seed=3)
    stored = [stored_gain_reference(sensitivity, r, f).ravel() for r, f in TURNS]
    distinct = {tuple(np.round(s, 4)) for s in stored}
    assert len(distinct) == 8  # the 12 (rotation, flip) pairs make the square's 8 symmetries
    for a, b in itertools.combinations(stored, 2):
        assert np.array_equal(a, b) or np.abs(a - b).mean() > 0.05


def _halves_ratio(image: np.ndarray) -> float:
    """Mean of the left half over the right half (the sensitivity's left half is 0.8 times as sensitive)."""
    w = image.shape[1]
    return float(image[:, : w // 2].mean() / image[:, w // 2 :].mean())


def test_session_frames_are_thinned_and_the_written_reference_flattens_them(tmp_path: Path) -> None:
    (truth,) = simulate_small(
        tmp_path, size_pixels=128, gain_reference="mrc", gain_rotation_quarter_turns=1, gain_flip=2
    )
    assert truth.gain_reference == "frames/CountRef_cm40000-1.mrc"
    assert (truth.gain_rotation_quarter_turns, truth.gain_flip) == (1, 2)
    summed = sum(tifffile.imread(tmp_path / t.movie).sum(axis=0, dtype=np.float64) for t in truth.tilts)
    with (tmp_path / truth.gain_reference).open("rb") as stream:
        gain = read_gain(stream, (128, 128), truth.gain_rotation_quarter_turns, truth.gain_flip)
    raw, corrected = _halves_ratio(summed), _halves_ratio(summed * gain)
    print(f"left / right: raw {raw:.3f}, gain-corrected {corrected:.3f}")
    assert raw < 0.85
    assert abs(corrected - 1) < 0.05
    (flat,) = simulate_small(tmp_path / "flat", size_pixels=128)
    assert flat.gain_reference is None
    assert not list((tmp_path / "flat" / "frames").glob("CountRef_*"))
