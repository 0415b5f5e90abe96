"""A real SerialEM mdoc from another lab (EMBL, tests/data/mdoc) with movies named after its SubFramePaths,
through the watcher and the real broker: axis, unknown dose, UTC times, name, pixel size, refusals."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mdocfile
import mrcfile
import numpy as np
from source_fixtures import fast_source_settings, read_topic, run_watcher

from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.settings import CliSettings

DATA = Path(__file__).parent / "data" / "mdoc"


def _values(pipeline: CliSettings, record: str) -> list[dict[str, Any]]:
    values = [e.value for e in read_topic(pipeline, record)]
    assert all(v is not None for v in values)
    return [v for v in values if v is not None]


def _write_movies(session: Path, mdoc: Path, pixel_angstroms: float, wrong: str) -> list[str]:
    """One small 8-frame MRC per SubFramePath (frames unbinned: the mdoc's pixel / Binning 4)."""
    frame = mdocfile.read(mdoc)
    names = [str(p).rpartition("\\")[2] for p in frame["SubFramePath"]]
    (session / "frames").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in names:
        with mrcfile.new(session / "frames" / name) as mrc:
            mrc.set_data(rng.poisson(5, size=(8, 16, 16)).astype(np.int16))
            mrc.voxel_size = 2.0 if name == wrong else pixel_angstroms
    return names


def test_real_serialem_session_is_announced_as_the_microscope_meant_it(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    session.mkdir(parents=True)
    shutil.copy(DATA / "mdocfile_tilt_series.mdoc", session / "TS_01.mrc.mdoc")
    shutil.copy(DATA / "mdocfile_frame_set_single.mdoc", session / "single_exposure.mdoc")
    wrong = "TS_01_010_-15.0.mrc"
    names = _write_movies(session, session / "TS_01.mrc.mdoc", 5.4 / 4, wrong)
    params = SessionParameters(version=2, voltage_kv=300, time_zone="Europe/Berlin")
    watcher = run_watcher(session, fast_source_settings(acquisition_settings, parameters=params))
    assert watcher.done()

    movies = _values(acquisition_settings, "MovieAcquired")
    assert len(movies) == len(names) - 1
    assert {m["metadata"]["tilt_series_id"] for m in movies} == {"cm40000-1:TS_01"}  # not TS_01.mrc
    assert {m["tilt_axis_angle_degrees"] for m in movies} == {85.3}  # the header's, not RotationAngle 175.3
    assert {(m["dose_source"], m["dose_e_per_angstrom2"]) for m in movies} == {("unknown", 0.0)}
    assert {(m["voltage_kv"], m["mdoc_writer"], m["session_parameters_version"]) for m in movies} == {
        (300.0, "serialem", 2)
    }
    first = next(m for m in movies if m["acquisition_order"] == 0)
    # DateTime = 30-Nov-15  15:21:38 in Heidelberg (CET, UTC+1)
    assert first["acquired_at"] == datetime(2015, 11, 30, 14, 21, 38, tzinfo=UTC)
    assert first["metadata"]["occurred_at"] == first["acquired_at"]

    failures = _values(acquisition_settings, "ProcessingFailed")
    by_series = {(f["metadata"]["tilt_series_id"], f["error_class"]): f for f in failures}
    pixel = by_series[("cm40000-1:TS_01", "InvalidAcquisitionValueError")]
    assert wrong in pixel["error_message"]
    assert "pixel size 2 Å disagrees" in pixel["error_message"]
    frame_set = by_series[("cm40000-1:single_exposure", "NotATiltSeriesError")]
    assert "frame-set mdoc" in frame_set["error_message"]
    assert len(failures) == 2

    ends = _values(acquisition_settings, "TiltSeriesAcquisitionEnded")
    assert [e["metadata"]["tilt_series_id"] for e in ends] == ["cm40000-1:TS_01"]  # none for the frame set
    assert ends[0]["dose_known"] is False
    assert ends[0]["tilt_axis_angle_degrees"] == 85.3
