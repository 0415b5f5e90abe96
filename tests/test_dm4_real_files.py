"""Gain references read through the ``dm4`` library on real Digital Micrograph files (tests/data/dm4,
sources in its README): the image, never the thumbnail, in the shape and orientation the file holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tiltstream.processors.motioncorr.movie_io import read_gain, read_gain_image
from tiltstream.processors.runtime.errors import CorruptInputError

DATA = Path(__file__).parent / "data" / "dm4"
NCEM_2D = DATA / "ncempy_dmTest_float32_nonSquare_diffPixelSize.dm4"
NCEM_3D = DATA / "ncempy_dmTest_3D_int16_64_65_66.dm4"


@pytest.mark.parametrize("name", ["rsciio_2D_test-2.dm4", "rsciio_2D_test-10.dm4"])
def test_small_images_are_read_not_their_larger_thumbnail(name: str) -> None:
    """rosettasciio's own test reads these (float32, uint16) as [[1, 2], [3, 4]]; their 64 x 64 RGB
    thumbnail is the larger image in the file."""
    with (DATA / name).open("rb") as stream:
        image = read_gain_image(stream)
    assert np.array_equal(image, np.array([[1, 2], [3, 4]], np.float32))


def test_non_square_float_image_has_the_shape_ncempy_reads() -> None:
    """ncempy's test reads (64, 128); the data is a ramp along x (0..127 in every row), the thumbnail
    beside it a grey RGB image of the same size, so taking the thumbnail or transposing both fail."""
    with NCEM_2D.open("rb") as stream:
        image = read_gain_image(stream)
    assert image.shape == (64, 128)
    assert np.array_equal(image, np.broadcast_to(np.arange(128, dtype=np.float32), (64, 128)))


def test_real_dm4_gain_is_turned_to_the_frames() -> None:
    """Through the backend's gain path: a quarter turn makes the (64, 128) reference fit (128, 64)
    frames, as numpy.rot90(gain, -1); the unturned reference is refused for those frames."""
    with NCEM_2D.open("rb") as stream:
        gain = read_gain(stream, (128, 64), rotation_quarter_turns=1)
    with NCEM_2D.open("rb") as stream:
        stored = read_gain_image(stream)
    assert np.array_equal(gain, np.rot90(stored, -1))
    with NCEM_2D.open("rb") as stream, pytest.raises(CorruptInputError, match="does not match frames"):
        read_gain(stream, (128, 64))


def test_stack_in_a_dm4_gives_its_first_section() -> None:
    """ncempy reads this int16 stack as (66, 65, 64): 66 sections of 65 x 64, each a ramp along x."""
    with NCEM_3D.open("rb") as stream:
        image = read_gain_image(stream)
    assert image.shape == (65, 64)
    assert np.array_equal(image, np.broadcast_to(np.arange(64, dtype=np.float32), (65, 64)))
