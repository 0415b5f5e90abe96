"""Motion correction with the builtin backend on seeded synthetic movies with a known drift (CPU).

Drift tolerance: the issue asks for 0.5 px RMS. On these movies (1 count per pixel per frame, specimen
contrast 10 %, a 1.2 px-per-frame random walk) the backend measured 0.18-0.27 px RMS at 256² over
seeds 0-3, and 0.05-0.08 px at 512² binned by 2; the tests assert the issue's 0.5 px.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
from motioncorr_fixtures import (
    cpu_settings,
    drift_rms_pixels,
    movie_event,
    run_movie,
    synthetic_movie,
    write_movie,
)

from tiltstream.processors.motioncorr import MotionCorrectionProcessor
from tiltstream.processors.motioncorr.trajectory import drift_fields
from tiltstream.processors.runtime import CorruptInputError, ImpossibleParametersError, Job
from tiltstream.streams.samples import sample_event

PIXEL = 1.5
SNR = {"counts": 1.0, "contrast": 0.1}


def test_lzw_tiff_movie_drift_recovered_and_outputs_written(tmp_path: Path) -> None:
    movie, drift = synthetic_movie(0, size=256, frames=8, **SNR)
    write_movie(tmp_path / "raw" / "cm1" / "Position_1_004.tiff", movie, PIXEL)
    assert (
        tifffile.TiffFile(tmp_path / "raw" / "cm1" / "Position_1_004.tiff").pages[0].compression == 5
    )  # LZW
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path))
    value = movie_event("cm1/Position_1_004.tiff", movie, "tiff")
    event = run_movie(processor, value)

    applied = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in event["frame_shifts"]])
    assert drift_rms_pixels(applied / PIXEL, drift) < 0.5
    truth = drift_fields(-drift * PIXEL)
    assert event["total_motion_angstroms"] == pytest.approx(truth["total_motion_angstroms"], rel=0.15)
    assert event["early_motion_angstroms"] + event["late_motion_angstroms"] == pytest.approx(
        event["total_motion_angstroms"]
    )
    assert event["metadata"]["causation_id"] == value["metadata"]["event_id"]
    assert event["dose_weighted"] is True
    assert event["backend"] == "tiltstream-fourier-global"  # 1 x 1 patch: the Fourier path
    processed = tmp_path / "processed"
    folder = "cm40000-1/motioncorr/cm40000-1_Position_1"  # the series is part of every output path
    assert event["micrograph"] == {"root": "processed", "path": f"{folder}/Position_1_004.mrc"}
    with mrcfile.open(processed / event["micrograph"]["path"]) as mrc:
        assert mrc.data.shape == (256, 256)
        assert float(mrc.voxel_size.x) == pytest.approx(PIXEL)
    for key in ("thumbnail", "drift_plot", "micrograph_not_dose_weighted"):
        path = processed / event[key]["path"]
        assert path.stat().st_size > 0, key
    assert (processed / event["thumbnail"]["path"]).read_bytes()[:4] == b"\x89PNG"
    trajectory = np.loadtxt(processed / folder / "Position_1_004.drift.csv", delimiter=",")
    np.testing.assert_allclose(trajectory, applied)

    # redelivery: same outputs, same event id, no stray temporary files
    again = run_movie(processor, value)
    assert again["metadata"]["event_id"] == event["metadata"]["event_id"]
    assert not list(processed.rglob(".*tmp*"))


def test_mrc_super_resolution_movie_with_gain_binned_by_two(tmp_path: Path) -> None:
    movie, drift = synthetic_movie(1, size=512, frames=8, step_pixels=2.4, **SNR)
    gain = np.random.default_rng(7).uniform(0.8, 1.25, movie.shape[1:]).astype(np.float32)
    write_movie(tmp_path / "raw" / "cm1" / "super.mrc", movie.astype(np.float32) / gain, PIXEL / 2)
    with mrcfile.new(tmp_path / "raw" / "cm1" / "gain.mrc") as mrc:
        mrc.set_data(gain)
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path, binning=2, patches_x=2, patches_y=2))
    value = movie_event("cm1/super.mrc", movie, "mrc", gain_reference={"root": "raw", "path": "cm1/gain.mrc"})
    value["pixel_size_angstroms"] = PIXEL / 2
    event = run_movie(processor, value)
    assert event["binning"] == 2
    assert event["pixel_size_angstroms"] == pytest.approx(PIXEL)
    assert (event["patches_x"], event["patches_y"]) == (2, 2)
    applied = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in event["frame_shifts"]])
    assert drift_rms_pixels(applied / PIXEL, drift / 2) < 0.5
    with mrcfile.open(tmp_path / "processed" / event["micrograph"]["path"]) as mrc:
        assert mrc.data.shape == (256, 256)
        assert float(mrc.voxel_size.x) == pytest.approx(PIXEL)


def test_corrupt_and_impossible_movies_fail_permanently(tmp_path: Path) -> None:
    movie, _ = synthetic_movie(2, size=128, frames=4, **SNR)
    path = tmp_path / "raw" / "cm1" / "broken.tiff"
    write_movie(path, movie, PIXEL)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # truncated transfer
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path))
    with pytest.raises(CorruptInputError):
        processor.load(movie_event("cm1/broken.tiff", movie, "tiff"))
    write_movie(path, movie, PIXEL)
    with pytest.raises(CorruptInputError, match="4 frames on disk, 9 announced"):
        processor.load(movie_event("cm1/broken.tiff", movie, "tiff") | {"frame_count": 9})
    job = Job(movie_event("cm1/broken.tiff", movie, "tiff") | {"pixel_size_angstroms": 0.0}, "t", 0, 0, 1)
    with pytest.raises(ImpossibleParametersError):
        processor.process(job, None)


def test_three_series_with_a_movie_of_the_same_name_keep_three_micrographs(tmp_path: Path) -> None:
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path))
    events, micrographs = [], {}
    for series in (1, 2, 3):  # three beam-shift targets, each with its own Position_1_001.tiff
        movie, _ = synthetic_movie(10 + series, size=128, frames=4, **SNR)
        relative = f"cm1/target_{series}/Position_1_001.tiff"
        write_movie(tmp_path / "raw" / relative, movie * series, PIXEL)  # each series its own brightness
        value = movie_event(relative, movie, "tiff")
        value["metadata"] = sample_event("MovieAcquired", series, 0)["metadata"]
        event = run_movie(processor, value)
        events.append(event)
        with mrcfile.open(tmp_path / "processed" / event["micrograph"]["path"]) as mrc:
            micrographs[series] = float(mrc.data.mean())
    assert len({e["micrograph"]["path"] for e in events}) == 3
    assert all(
        f"cm40000-1_Position_{n}/" in e["micrograph"]["path"] for n, e in zip((1, 2, 3), events, strict=True)
    )
    for series in (1, 2, 3):  # every file is still there and still holds its own series' movie
        path = tmp_path / "processed" / events[series - 1]["micrograph"]["path"]
        with mrcfile.open(path) as mrc:
            assert float(mrc.data.mean()) == pytest.approx(micrographs[series])
    assert micrographs[1] < micrographs[2] < micrographs[3]
    assert len(list((tmp_path / "processed").rglob("Position_1_001.mrc"))) == 3


def test_unknown_dose_is_not_dose_weighted_and_says_so(tmp_path: Path) -> None:
    """ExposureDose 0 in the mdoc reaches the processor as dose 0 with dose_source 'unknown': the builtin
    backend sums without weighting and the event says dose_weighted false."""
    movie, _drift = synthetic_movie(1, size=128, frames=4, **SNR)
    write_movie(tmp_path / "raw" / "cm1" / "Position_1_005.tiff", movie, PIXEL)
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path))
    value = movie_event("cm1/Position_1_005.tiff", movie, "tiff", dose_source="unknown")
    value["dose_e_per_angstrom2"] = 0.0
    event = run_movie(processor, value)
    assert event["dose_weighted"] is False
    assert event["micrograph_not_dose_weighted"] is None
    known = run_movie(processor, movie_event("cm1/Position_1_005.tiff", movie, "tiff"))
    assert known["dose_weighted"] is True


def test_the_event_tells_the_beam_brightness_per_pixel_per_second(tmp_path: Path) -> None:
    """The plain sum's mean counts per pixel over the exposure time, from the movie itself (dose
    unknown: it is what dark-tilt detection has then); binned by 2 it stays per movie pixel."""
    movie, _ = synthetic_movie(4, size=128, frames=6, counts=3.0, contrast=0.1)
    write_movie(tmp_path / "raw" / "cm1" / "bright.tiff", movie, PIXEL)
    truth = float(movie.sum(axis=0, dtype=np.float64).mean()) / 0.6
    for binning in (1, 2):
        processor = MotionCorrectionProcessor(cpu_settings(tmp_path, binning=binning))
        value = movie_event(
            "cm1/bright.tiff", movie, "tiff", dose_source="unknown", exposure_time_seconds=0.6
        )
        value["dose_e_per_angstrom2"] = 0.0
        event = run_movie(processor, value)
        assert event["mean_counts_per_pixel_per_second"] == pytest.approx(truth, rel=1e-4), binning
    dim = movie // 4  # a quarter of the electrons: a quarter of the brightness
    write_movie(tmp_path / "raw" / "cm1" / "dim.tiff", dim, PIXEL)
    event = run_movie(
        MotionCorrectionProcessor(cpu_settings(tmp_path)), movie_event("cm1/dim.tiff", dim, "tiff")
    )
    assert event["mean_counts_per_pixel_per_second"] == pytest.approx(
        float(dim.sum(axis=0, dtype=np.float64).mean()) / 0.6, rel=1e-4
    )
    unknown_time = movie_event("cm1/dim.tiff", dim, "tiff", exposure_time_seconds=0.0)
    assert (
        run_movie(MotionCorrectionProcessor(cpu_settings(tmp_path)), unknown_time)[
            "mean_counts_per_pixel_per_second"
        ]
        is None
    )
