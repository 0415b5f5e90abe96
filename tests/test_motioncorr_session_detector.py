"""Per-session detector parameters (issue 14 item 4): gain rotation/flip, EER grouping and sampling and the
defect file come in the movie's ``MovieAcquired`` from the session parameters and win over the service's
settings, in the builtin backend and on MotionCor2's command line alike; null keeps the service's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from motioncorr_fixtures import cpu_settings, drift_rms_pixels, synthetic_movie, write_movie
from test_motioncorr_eer import GROUP, PIXEL, _correct, _event, _write_eer_movie

from tiltstream.processors.motioncorr import MotionCorrectionProcessor
from tiltstream.processors.motioncorr.defects import defect_mask, read_defect_file, replace_defects
from tiltstream.processors.runtime import CorruptInputError, Job
from tiltstream.streams.events import MovieAcquired
from tiltstream.streams.validation import InvalidEventError, check_event

SERVICE: dict[str, Any] = {
    "backend": "motioncor2",
    "eer_group_frames": 20,
    "eer_sampling": 2,
    "gain_rotation_quarter_turns": 3,
    "gain_flip": 1,
    "motioncor_defect_file": "/facility/falcon4i/defects.txt",
}


def _options(processor: MotionCorrectionProcessor, value: dict[str, Any]) -> dict[str, str]:
    movie = MovieAcquired.from_dict(value)
    argv = processor._motioncor_command(movie, processor.parameters_of(movie, processor.settings)).argv()
    return {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("-")}


def _eer_files(tmp_path: Path) -> None:
    (tmp_path / "raw" / "cm1").mkdir(parents=True)
    for name in ("tilt.eer", "CountRef.mrc", "defects.txt"):
        (tmp_path / "raw" / "cm1" / name).write_bytes(b"")  # MotionCor2 reads them, not the processor


def test_the_sessions_values_win_on_the_motioncor2_command_line(tmp_path: Path) -> None:
    _eer_files(tmp_path)
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path, **SERVICE))
    gain = {"root": "raw", "path": "cm1/CountRef.mrc"}
    service = _options(processor, _event("cm1/tilt.eer", 600, (4096, 4096), gain_reference=gain))
    assert (service["-RotGain"], service["-FlipGain"], service["-EerSampling"]) == ("3", "1", "2")
    assert service["-DefectFile"] == "/facility/falcon4i/defects.txt"
    session = _options(
        processor,
        _event(
            "cm1/tilt.eer",
            600,
            (4096, 4096),
            gain_reference=gain,
            gain_rotation_quarter_turns=1,
            gain_flip=0,  # 0 is a value: no flip for this session, though the service flips
            eer_group_frames=30,
            eer_sampling=1,
            defect_file={"root": "raw", "path": "cm1/defects.txt"},
        ),
    )
    assert (session["-RotGain"], session["-FlipGain"], session["-EerSampling"]) == ("1", "0", "1")
    assert session["-PixSize"] == f"{PIXEL:g}"  # 1x: the physical pixel
    assert session["-DefectFile"] == str(tmp_path / "raw" / "cm1" / "defects.txt")
    assert Path(session["-FmIntFile"]).read_text() == f"600 30 {3.0 / 600:.6g}\n"
    assert session["-FmDose"] == f"{3.0 / 600 * 30:g}"


def test_a_sessions_dose_per_output_frame_groups_its_eer_movies_by_dose(tmp_path: Path) -> None:
    settings = cpu_settings(tmp_path, eer_group_frames=20)
    value = _event("cm1/tilt.eer", 600, (64, 64), eer_dose_per_output_frame_e_per_angstrom2=0.25)
    rendering = MotionCorrectionProcessor.eer_rendering_of(MovieAcquired.from_dict(value), settings)
    assert rendering is not None
    assert rendering.frames_per_group == 50  # 0.25 e/Å² of 3 e/Å² over 600 EER frames, not the service's 20
    assert MotionCorrectionProcessor.eer_rendering_of(
        MovieAcquired.from_dict(_event("cm1/tilt.eer", 600, (64, 64))), settings
    ) == type(rendering)(20, 1)


def test_the_builtin_backend_applies_the_sessions_gain_flip(tmp_path: Path) -> None:
    """The gain is stored mirrored; the service does not flip it, the session says flip 2: flat and the
    drift recovered; the same movie without the session's value keeps the stripes."""
    movie, drift = synthetic_movie(2, size=192, frames=8, counts=1.5, contrast=0.15)
    rng = np.random.default_rng(4)
    sensitivity = np.clip(
        rng.uniform(0.55, 1.0, (1, movie.shape[2])) * rng.uniform(0.9, 1.0, movie.shape[1:]), 0.05, 1
    )
    sensitivity[:, : movie.shape[2] // 2] *= 0.6
    observed = rng.binomial(movie.astype(np.int64), sensitivity[None])
    _write_eer_movie(tmp_path / "raw" / "cm1" / "tilt.eer", observed, seed=5)
    tifffile.imwrite(tmp_path / "raw" / "cm1" / "ref.gain", (1 / sensitivity)[:, ::-1].astype(np.float32))
    gain = {"root": "raw", "path": "cm1/ref.gain"}
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path, eer_group_frames=GROUP))
    frames = movie.shape[0] * GROUP
    flipped, flipped_stripes = _correct(
        processor, _event("cm1/tilt.eer", frames, movie.shape[1:], gain_reference=gain, gain_flip=2), drift
    )
    as_stored, stored_stripes = _correct(
        processor, _event("cm1/tilt.eer", frames, movie.shape[1:], gain_reference=gain), drift
    )
    assert flipped < 0.5
    assert stored_stripes > 3 * flipped_stripes
    assert as_stored > flipped


def test_out_of_range_session_values_are_refused_where_events_are_made_and_read() -> None:
    """The edge checks every producer and consumer runs: an event with such a value is never corrected."""
    for field, value, reason in (
        ("gain_flip", 3, "gain_flip: 3 is outside [0, 2]"),
        (
            "gain_rotation_quarter_turns",
            -1,
            "gain_rotation_quarter_turns: -1 quarter turns is outside [0, 3]",
        ),
        ("eer_sampling", 4, "eer_sampling: 4 is outside [1, 2]"),
        ("eer_group_frames", -5, "eer_group_frames: -5 is outside"),
        ("eer_dose_per_output_frame_e_per_angstrom2", -0.1, "eer_dose_per_output_frame_e_per_angstrom2"),
    ):
        with pytest.raises(InvalidEventError) as refused:
            check_event("MovieAcquired", _event("cm1/tilt.eer", 600, (64, 64), **{field: value}))
        assert reason in str(refused.value), str(refused.value)
    check_event("MovieAcquired", _event("cm1/tilt.eer", 600, (64, 64), gain_flip=2, eer_sampling=1))


def test_defect_file_lines_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "defects.txt"
    path.write_text("# Falcon 4i\n10 0 1 64\n\n3 5 2 2  # a hot cluster\n")
    rectangles = read_defect_file(path.open("rb"))
    assert rectangles == [(10, 0, 1, 64), (3, 5, 2, 2)]
    mask = defect_mask(rectangles, (64, 64))
    assert mask.sum() == 64 + 4
    assert mask[:, 10].all()
    assert mask[5:7, 3:5].all()
    assert defect_mask(rectangles, (128, 128), scale=2).sum() == 4 * (64 + 4)  # EER at 2x
    with pytest.raises(CorruptInputError, match="outside"):
        defect_mask([(70, 0, 1, 1)], (64, 64))
    path.write_text("10 0 one 64\n")
    with pytest.raises(CorruptInputError, match="line 1"):
        read_defect_file(path.open("rb"))
    path.write_text("10 0 0 64\n")
    with pytest.raises(CorruptInputError, match="empty"):
        read_defect_file(path.open("rb"))


def test_the_builtin_backend_replaces_a_hot_column_named_in_the_sessions_defect_file(tmp_path: Path) -> None:
    """A hot column (20x the counts) leaves a stripe in the sum; named in the session's defect file it is
    replaced: the drift is recovered and the sum is flat there."""
    movie, drift = synthetic_movie(8, size=128, frames=8, counts=2.0, contrast=0.2)
    hot = movie.copy()
    hot[:, :, 40] = 40
    write_movie(tmp_path / "raw" / "cm1" / "hot.tiff", hot, PIXEL)
    (tmp_path / "raw" / "cm1" / "defects.txt").write_text("40 0 1 128\n")
    value = _tiff_event("cm1/hot.tiff", hot)
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path))
    with_file, column = _corrected(
        processor, value | {"defect_file": {"root": "raw", "path": "cm1/defects.txt"}}, drift
    )
    without, hot_column = _corrected(processor, value, drift)
    print(f"drift RMS {with_file:.3f} / {without:.3f} px, column 40 {column:.3f} / {hot_column:.3f}")
    assert with_file < 0.5
    assert column == pytest.approx(1.0, abs=0.1)  # the replaced column: like the others
    assert hot_column > 5


def _tiff_event(relative: str, movie: np.ndarray) -> dict[str, Any]:
    return _event(relative, movie.shape[0], movie.shape[1:]) | {"movie_format": "tiff"}


def _corrected(
    processor: MotionCorrectionProcessor, value: dict[str, Any], drift: np.ndarray
) -> tuple[float, float]:
    """The drift's RMS error (pixels) and column 40's mean over the micrograph's mean."""
    import mrcfile

    job = Job(value=value, topic="movie.acquired", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(value))
    shifts = output.value["frame_shifts"]
    applied = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in shifts]) / PIXEL
    with mrcfile.open(
        Path(processor.settings.data_roots["processed"]) / output.value["micrograph"]["path"]
    ) as mrc:
        data = np.asarray(mrc.data, dtype=np.float64)
    return drift_rms_pixels(applied, drift), float(data[:, 40].mean() / data.mean())


def test_replace_defects_takes_each_frames_own_mean() -> None:
    frames = np.stack([np.full((4, 4), 2.0), np.full((4, 4), 6.0)]).astype(np.float32)
    frames[:, 1, 1] = 1000
    out = replace_defects(frames, defect_mask([(1, 1, 1, 1)], (4, 4)))
    assert out[:, 1, 1].tolist() == [2.0, 6.0]
