"""Reading EER movies (grouped, 1x/2x) and gain references (.gain, .dm4, turned) for the builtin backend."""

from __future__ import annotations

import struct
from pathlib import Path

import eerfile
import mrcfile
import numpy as np
import pytest
import tifffile

from tiltstream.connectors.simulator.eer_writer import encode_eer
from tiltstream.processors.motioncorr import MotionCorrectionProcessor, MotionCorrectionSettings
from tiltstream.processors.motioncorr.eer import EerRendering, eer_frames_per_group
from tiltstream.processors.motioncorr.movie_io import orient_gain, read_gain, read_movie
from tiltstream.processors.runtime.errors import CorruptInputError, ImpossibleParametersError
from tiltstream.streams.events import MovieAcquired
from tiltstream.streams.samples import sample_event

SHAPE = (32, 48)
EER_FRAMES = 12


def _write_eer(path: Path, seed: int = 5) -> np.ndarray:
    """A seeded EER movie at ``path``; its electrons counted on the 2x grid, ``(t, 2h, 2w)``."""
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    events, counts = [], np.zeros((EER_FRAMES, 2 * h, 2 * w), np.int64)
    for t in range(EER_FRAMES):
        pixels = rng.choice(h * w, int(rng.integers(50, 300)), replace=False)
        y = (pixels // w) * 4 + rng.integers(0, 4, pixels.size)
        x = (pixels % w) * 4 + rng.integers(0, 4, pixels.size)
        events.append((y, x))
        counts[t, y // 2, x // 2] += 1
    path.write_bytes(encode_eer(events, SHAPE, pixel_size_angstroms=1.2))
    return counts


def _groups(counts: np.ndarray, group: int, factor: int) -> np.ndarray:
    t, h, w = counts.shape
    binned = counts.reshape(t, h // factor, factor, w // factor, factor).sum(axis=(2, 4))
    grouped: np.ndarray = (
        binned[: t // group * group].reshape(t // group, group, *binned.shape[1:]).sum(axis=1)
    )
    return grouped


@pytest.mark.parametrize(("group", "sampling"), [(3, 1), (5, 1), (4, 2)])
def test_eer_frames_grouped_and_sampled(tmp_path: Path, group: int, sampling: int) -> None:
    counts = _write_eer(tmp_path / "m.eer")
    with (tmp_path / "m.eer").open("rb") as stream:
        frames = read_movie(stream, "eer", EER_FRAMES, EerRendering(group, sampling))
    assert frames.dtype == np.float32
    assert frames.shape == (EER_FRAMES // group, SHAPE[0] * sampling, SHAPE[1] * sampling)
    assert np.array_equal(frames, _groups(counts, group, 2 // sampling))  # 5: the last 2 frames dropped


def test_eer_grouping_agrees_with_eerfile(tmp_path: Path) -> None:
    _write_eer(tmp_path / "m.eer", seed=11)
    dose_per_eer_frame = eerfile.data_models.EERHeader.from_file(
        tmp_path / "m.eer"
    ).dose_per_frame_electrons_per_square_angstrom
    by_eerfile = eerfile.render(tmp_path / "m.eer", dose_per_output_frame=4 * dose_per_eer_frame)
    group = eer_frames_per_group(EER_FRAMES, dose_per_eer_frame * EER_FRAMES, 0, 4 * dose_per_eer_frame)
    with (tmp_path / "m.eer").open("rb") as stream:
        ours = read_movie(stream, "eer", EER_FRAMES, EerRendering(group))
    assert group == 4
    assert np.array_equal(ours, by_eerfile.astype(np.float32))


def test_eer_group_size_from_dose_or_setting() -> None:
    assert eer_frames_per_group(600, 3.0, 0, 0.3) == 60  # 0.005 e/A^2 per EER frame
    assert eer_frames_per_group(600, 3.0, 25, 0.3) == 25  # the setting wins
    assert eer_frames_per_group(600, 3.0, 0, 100.0) == 300  # two output frames at least
    assert eer_frames_per_group(600, 0.0, 0, 0.3) == 60  # dose unknown: 10 output frames
    assert eer_frames_per_group(600, 0.0, 0, 0.3, output_frames_without_dose=4) == 150
    with pytest.raises(ImpossibleParametersError, match="fewer than 2"):
        eer_frames_per_group(600, 3.0, 400, 0.3)  # a set group size is taken as it is, or refused


def test_corrupt_eer_is_corrupt_input(tmp_path: Path) -> None:
    _write_eer(tmp_path / "m.eer")
    data = bytearray((tmp_path / "m.eer").read_bytes())
    with tifffile.TiffFile(tmp_path / "m.eer") as tif:
        offset, size = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data[offset : offset + size] = b"\xff" * size  # runs of 127 only: they overshoot the frame's end
    (tmp_path / "bad.eer").write_bytes(bytes(data))
    (tmp_path / "cut.eer").write_bytes(bytes(data[: len(data) // 2]))
    tifffile.imwrite(tmp_path / "plain.eer", np.zeros((3, *SHAPE), np.uint8), photometric="minisblack")
    for name, reason in (("bad.eer", "cannot decode"), ("cut.eer", "announced"), ("plain.eer", "not an EER")):
        with (tmp_path / name).open("rb") as stream, pytest.raises(CorruptInputError, match=reason):
            read_movie(stream, "eer", EER_FRAMES, EerRendering(2))


def test_gain_rotation_then_flip_as_motioncor2() -> None:
    gain = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert orient_gain(gain, 1, 0).tolist() == [[3.0, 1.0], [4.0, 2.0]]  # 90 degrees, y up: MotionCor's
    assert orient_gain(gain, 0, 1).tolist() == [[3.0, 4.0], [1.0, 2.0]]  # upside down
    assert orient_gain(gain, 0, 2).tolist() == [[2.0, 1.0], [4.0, 3.0]]  # left-right
    assert orient_gain(gain, 1, 2).tolist() == [[1.0, 3.0], [2.0, 4.0]]  # rotated first, then flipped
    with pytest.raises(ImpossibleParametersError):
        orient_gain(gain, 4, 0)


def test_falcon_gain_file_read_turned_and_sized(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    stored = rng.uniform(0.8, 1.2, size=(48, 32)).astype(np.float32)  # as stored: rotated by 90
    tifffile.imwrite(tmp_path / "ref.gain", stored)
    with (tmp_path / "ref.gain").open("rb") as stream:
        gain = read_gain(stream, SHAPE, rotation_quarter_turns=3, flip=1)
    assert np.array_equal(gain, np.rot90(stored, -3)[::-1])
    with (tmp_path / "ref.gain").open("rb") as stream:  # frames rendered at 2x: each pixel 2 x 2
        doubled = read_gain(stream, (2 * SHAPE[0], 2 * SHAPE[1]), rotation_quarter_turns=1)
    assert np.array_equal(doubled[::2, ::2], np.rot90(stored, -1))
    assert np.array_equal(doubled[1::2, 1::2], np.rot90(stored, -1))
    with (
        (tmp_path / "ref.gain").open("rb") as stream,
        pytest.raises(CorruptInputError, match="does not match"),
    ):
        read_gain(stream, SHAPE)  # not turned: 48 x 32 against frames of 32 x 48


def _dm4_name(name: str | None) -> bytes:
    encoded = (name or "").encode()
    return struct.pack(">H", len(encoded)) + encoded


def _dm4_tag(name: str | None, types: list[int], payload: bytes) -> bytes:
    """A DM4 data tag: ``%%%%``, the type codes (big-endian), then the little-endian value."""
    body = b"%%%%" + struct.pack(f">Q{len(types)}q", len(types), *types) + payload
    return b"\x15" + _dm4_name(name) + struct.pack(">Q", len(body)) + body


def _dm4_dir(name: str | None, entries: list[bytes]) -> bytes:
    content = b"\x00\x00" + struct.pack(">Q", len(entries)) + b"".join(entries)
    return b"\x14" + _dm4_name(name) + struct.pack(">Q", len(content)) + content


def _dm4_image(image: np.ndarray) -> bytes:
    """One ImageList entry: ImageData with its float32 Data and Dimensions (x first)."""
    dimensions = [_dm4_tag(None, [3], struct.pack("<i", size)) for size in image.shape[::-1]]
    data = _dm4_tag("Data", [20, 6, image.size], image.astype("<f4").tobytes())
    return _dm4_dir(None, [_dm4_dir("ImageData", [data, _dm4_dir("Dimensions", dimensions)])])


def _dm4_file(*images: np.ndarray) -> bytes:
    """A minimal DM4 file (version 4, little-endian) holding ``images`` in its ImageList, as Digital
    Micrograph saves a thumbnail before the image; written here only to test the reader library."""
    root = b"\x00\x00" + struct.pack(">Q", 1) + _dm4_dir("ImageList", [_dm4_image(i) for i in images])
    return struct.pack(">IQI", 4, len(root), 1) + root + bytes(8)


def test_gatan_dm4_gain_read_through_the_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    gain = rng.uniform(0.9, 1.1, SHAPE).astype(np.float32)
    (tmp_path / "CountRef.dm4").write_bytes(_dm4_file(np.zeros((4, 6), np.float32), gain))
    with (tmp_path / "CountRef.dm4").open("rb") as stream:
        read = read_gain(stream, SHAPE, flip=2)
    assert np.array_equal(read, gain[:, ::-1])  # the image, not the thumbnail, then flipped


def test_unreadable_dm4_gain_is_corrupt_input(tmp_path: Path) -> None:
    (tmp_path / "CountRef.dm4").write_bytes(b"\x00\x00\x00\x04" + bytes(range(256)) * 4)
    with (tmp_path / "CountRef.dm4").open("rb") as stream, pytest.raises(CorruptInputError, match="DM4"):
        read_gain(stream, SHAPE)


@pytest.mark.parametrize("name", ["CountRef.dm4", "20251203_gain.gain"])
def test_non_mrc_gain_converted_to_mrc_for_motioncor2(tmp_path: Path, name: str) -> None:
    """MotionCor2 loads float MRC gains only: a .dm4 or .gain is written as MRC beside the output, as
    stored."""
    gain = np.random.default_rng(3).uniform(0.9, 1.1, SHAPE).astype(np.float32)
    (tmp_path / "raw").mkdir()
    (tmp_path / "processed").mkdir()
    if name.endswith(".dm4"):
        (tmp_path / "raw" / name).write_bytes(_dm4_file(gain))
    else:
        tifffile.imwrite(tmp_path / "raw" / name, gain)
    (tmp_path / "raw" / "movie.tiff").write_bytes(b"")
    settings = MotionCorrectionSettings(
        data_roots={"raw": tmp_path / "raw", "processed": tmp_path / "processed"},
        backend="motioncor2",
        gain_flip=1,
    )
    processor = MotionCorrectionProcessor(settings)
    value = sample_event("MovieAcquired", 1, 3)
    value.update(movie={"root": "raw", "path": "movie.tiff"}, gain_reference={"root": "raw", "path": name})
    movie = MovieAcquired.from_dict(value)
    argv = processor._motioncor_command(movie, processor.parameters_of(movie, settings)).argv()
    converted = Path(argv[argv.index("-Gain") + 1])
    assert converted.name.endswith(".gain.mrc")
    assert argv[argv.index("-FlipGain") + 1] == "1"
    with mrcfile.open(converted) as mrc:
        assert np.array_equal(mrc.data, gain)
