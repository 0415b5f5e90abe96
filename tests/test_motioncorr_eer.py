"""EER movies through the motion-correction step: MotionCor2's options, and the builtin backend's drift.

The EER movies are written by the simulator's EER writer; each output frame of the drifting specimen
(``synthetic_movie``) is spread over ``GROUP`` electron frames (``eer_events_from_counts``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
import tifffile
from motioncorr_fixtures import cpu_settings, drift_rms_pixels, synthetic_movie

from tiltstream.connectors.simulator.eer_writer import eer_events_from_counts, encode_eer
from tiltstream.processors.motioncorr import MotionCorrectionProcessor
from tiltstream.processors.runtime import CorruptInputError, Job
from tiltstream.streams.events import MovieAcquired
from tiltstream.streams.samples import sample_event

PIXEL = 1.5
GROUP = 6


def _event(relative: str, eer_frames: int, shape: tuple[int, int], **extra: Any) -> dict[str, Any]:
    value = sample_event("MovieAcquired", 1, 3)
    value.update(
        movie={"root": "raw", "path": relative},
        movie_format="eer",
        frame_count=eer_frames,
        image_height_pixels=shape[0],
        image_width_pixels=shape[1],
        pixel_size_angstroms=PIXEL,
        dose_e_per_angstrom2=3.0,
        **extra,
    )
    return value


def _write_eer_movie(path: Path, counts: np.ndarray, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    events = eer_events_from_counts(counts, GROUP, np.random.default_rng(seed))
    path.write_bytes(encode_eer(events, counts.shape[1:], PIXEL))


def _correct(
    processor: MotionCorrectionProcessor, value: dict[str, Any], drift: np.ndarray
) -> tuple[float, float]:
    """The drift's RMS error (pixels) and the micrograph's column stripes: the spread of its column
    means over their mean (the specimen averages out along a column, a fixed pattern does not)."""
    job = Job(value=value, topic="movie.acquired", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(value))
    shifts = output.value["frame_shifts"]
    applied = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in shifts]) / PIXEL
    root = processor.settings.data_roots["processed"]
    with mrcfile.open(Path(root) / output.value["micrograph"]["path"]) as mrc:
        columns = np.asarray(mrc.data, dtype=np.float64)[16:-16, 16:-16].mean(axis=0)  # away from edges
    return drift_rms_pixels(applied, drift), float(columns.std() / columns.mean())


def test_motioncor2_gets_eer_options_and_a_fractionation_file(tmp_path: Path) -> None:
    settings = cpu_settings(
        tmp_path,
        backend="motioncor2",
        eer_group_frames=20,
        eer_sampling=2,
        gain_rotation_quarter_turns=3,
        gain_flip=1,
        motioncor_defect_file="/facility/falcon4i/defects.txt",
    )
    processor = MotionCorrectionProcessor(settings)
    (tmp_path / "raw" / "cm1").mkdir(parents=True)
    for name in ("Position_1_003_EER.eer", "CountRef.mrc"):
        (tmp_path / "raw" / "cm1" / name).write_bytes(b"")  # MotionCor2 reads them, not the processor
    value = _event(
        "cm1/Position_1_003_EER.eer",
        600,
        (4096, 4096),
        gain_reference={"root": "raw", "path": "cm1/CountRef.mrc"},
    )
    movie = MovieAcquired.from_dict(value)
    argv = processor._motioncor_command(movie, processor.parameters_of(movie, settings)).argv()
    options = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("-")}
    assert options["-InEer"] == str(tmp_path / "raw" / "cm1" / "Position_1_003_EER.eer")
    assert options["-EerSampling"] == "2"
    assert options["-PixSize"] == f"{PIXEL / 2:g}"  # the rendered (2x) pixel
    assert (options["-Gain"], options["-RotGain"], options["-FlipGain"]) == (
        str(tmp_path / "raw" / "cm1" / "CountRef.mrc"),
        "3",
        "1",
    )
    assert options["-DefectFile"] == "/facility/falcon4i/defects.txt"
    assert options["-FmDose"] == f"{3.0 / 600 * 20:g}"  # per output frame: 20 EER frames
    assert Path(options["-FmIntFile"]).read_text() == f"600 20 {3.0 / 600:.6g}\n"  # dose per EER frame
    tiff = dict(value, movie_format="tiff", frame_count=10)
    assert (
        "-FmIntFile"
        not in processor._motioncor_command(
            MovieAcquired.from_dict(tiff), processor.parameters_of(MovieAcquired.from_dict(tiff), settings)
        ).argv()
    )


def test_builtin_recovers_drift_from_an_eer_movie_with_a_flipped_gain(tmp_path: Path) -> None:
    """The detector's sensitivity has strong column stripes; the gain reference (its inverse) is stored
    mirrored left to right: applied with ``gain_flip`` 2 the drift is recovered within 0.5 px and
    the micrograph is flat, applied as stored the stripes stay (measured by the column means)."""
    movie, drift = synthetic_movie(2, size=192, frames=8, counts=1.5, contrast=0.15)
    rng = np.random.default_rng(4)
    columns = rng.uniform(0.55, 1.0, (1, movie.shape[2]))
    sensitivity = np.clip(columns * rng.uniform(0.9, 1.0, movie.shape[1:]), 0.05, 1.0)  # (h, w)
    sensitivity[:, : movie.shape[2] // 2] *= 0.6  # and the left half weaker: not symmetric
    observed = rng.binomial(movie.astype(np.int64), sensitivity[None])  # electrons lost, not added
    _write_eer_movie(tmp_path / "raw" / "cm1" / "tilt.eer", observed, seed=5)
    tifffile.imwrite(tmp_path / "raw" / "cm1" / "ref.gain", (1 / sensitivity)[:, ::-1].astype(np.float32))
    value = _event(
        "cm1/tilt.eer",
        movie.shape[0] * GROUP,
        movie.shape[1:],
        gain_reference={"root": "raw", "path": "cm1/ref.gain"},
    )
    flipped, flipped_stripes = _correct(
        MotionCorrectionProcessor(cpu_settings(tmp_path, eer_group_frames=GROUP, gain_flip=2)), value, drift
    )
    as_stored, stored_stripes = _correct(
        MotionCorrectionProcessor(cpu_settings(tmp_path, eer_group_frames=GROUP)), value, drift
    )
    print(
        f"drift RMS {flipped:.3f} / {as_stored:.3f} px, stripes {flipped_stripes:.4f} / {stored_stripes:.4f}"
    )
    assert flipped < 0.5
    assert stored_stripes > 3 * flipped_stripes
    assert as_stored > flipped


def test_event_of_an_eer_movie_counts_output_frames_and_their_dose(tmp_path: Path) -> None:
    """42 EER frames in groups of 6: 7 output frames, each 6/42 of the dose; a count other than the
    event's is refused."""
    movie, _ = synthetic_movie(3, size=64, frames=7, counts=1.0, contrast=0.1)
    _write_eer_movie(tmp_path / "raw" / "cm1" / "short.eer", movie, seed=1)
    value = _event("cm1/short.eer", 40, movie.shape[1:])  # 42 written, 40 announced
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path, eer_group_frames=GROUP))
    with pytest.raises(CorruptInputError, match="42 EER frames, 40 announced"):
        processor.load(value)
    value["frame_count"] = 42
    job = Job(value=value, topic="movie.acquired", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(value))
    assert (output.value["first_frame"], output.value["last_frame"]) == (0, 6)
    assert output.value["dose_per_frame_e_per_angstrom2"] == pytest.approx(3.0 / 42 * GROUP)


def test_eer_at_2x_sampling_binned_back_with_a_physical_pixel_gain(tmp_path: Path) -> None:
    """2x sampling renders on the sub-pixel grid (half the pixel); the physical-pixel gain is repeated
    2 x 2, and ``binning`` 2 brings the micrograph back to the physical pixel with the drift intact."""
    movie, drift = synthetic_movie(6, size=160, frames=8, counts=1.5, contrast=0.15)
    rng = np.random.default_rng(1)
    sensitivity = rng.uniform(0.6, 1.0, movie.shape[1:])
    observed = rng.binomial(movie.astype(np.int64), sensitivity[None])
    _write_eer_movie(tmp_path / "raw" / "cm1" / "tilt.eer", observed, seed=2)
    tifffile.imwrite(tmp_path / "raw" / "cm1" / "ref.gain", (1 / sensitivity).astype(np.float32))
    gain = {"root": "raw", "path": "cm1/ref.gain"}
    value = _event("cm1/tilt.eer", movie.shape[0] * GROUP, movie.shape[1:], gain_reference=gain)
    settings = cpu_settings(tmp_path, eer_group_frames=GROUP, eer_sampling=2, binning=2)
    error, _ = _correct(MotionCorrectionProcessor(settings), value, drift)
    print(f"2x sampling, binned 2: drift RMS {error:.3f} px")
    assert error < 0.5
    with mrcfile.open(tmp_path / "processed" / "cm40000-1/motioncorr/cm40000-1_Position_1/tilt.mrc") as mrc:
        assert mrc.data.shape == movie.shape[1:]
        assert float(mrc.voxel_size.x) == pytest.approx(PIXEL)


def test_eer_brightness_counts_the_electron_frames_summed(tmp_path: Path) -> None:
    """42 EER frames in groups of 5: 8 output frames hold 40 of them; the brightness is their electrons
    per pixel over their 40/42 of the exposure time."""
    movie, _ = synthetic_movie(5, size=64, frames=7, counts=2.0, contrast=0.1)
    events = eer_events_from_counts(movie, GROUP, np.random.default_rng(2))  # 42 electron frames
    path = tmp_path / "raw" / "cm1" / "remainder.eer"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_eer(events, movie.shape[1:], PIXEL))
    value = _event("cm1/remainder.eer", 42, movie.shape[1:], exposure_time_seconds=2.1)
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path, eer_group_frames=5))
    job = Job(value=value, topic="movie.acquired", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(value))
    assert output.value["last_frame"] == 7
    electrons = sum(len(y) for y, _ in events[:40])
    expected = electrons / movie[0].size / (2.1 * 40 / 42)
    assert output.value["mean_counts_per_pixel_per_second"] == pytest.approx(expected, rel=1e-4)
