"""The simulator writes what real microscopes write, selectable per session, and the source reads each
style as it reads real files: mdocfile (an independent reader) sees the raw fields, the source the meaning."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import mdocfile
import pytest
from source_fixtures import simulate_small

from tiltstream.connectors.simulator.mdoc_writer import serialem_datetime
from tiltstream.connectors.source.errors import MissingSessionValueError
from tiltstream.connectors.source.mdoc import read_mdoc
from tiltstream.connectors.source.movie_check import inspect_movie
from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.processors.motioncorr.eer import EerRendering
from tiltstream.processors.motioncorr.movie_io import read_movie


def test_serialem_rotation_angle_is_not_the_axis_and_the_header_is(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-1"
    simulate_small(session, tilt_axis_angle_degrees=85.3)
    frame = mdocfile.read(session / "Position_1.mdoc")
    assert list(frame["RotationAngle"]) == pytest.approx([175.3] * len(frame))  # as the real EMBL file
    info = read_mdoc(session / "Position_1.mdoc")
    assert (info.writer, info.tilt_axis_angle_degrees) == ("serialem", 85.3)


def test_tomo5_layout_axis_in_rotation_angle(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-1"
    simulate_small(session, mdoc_writer="tomo5", tilt_axis_angle_degrees=86.2)
    text = (session / "Position_1.mdoc").read_text()
    assert "[T = Tomography:" in text
    assert "TiltAxisAngle = -176.20" in text  # the header field that is not the axis
    info = read_mdoc(session / "Position_1.mdoc")
    assert (info.writer, info.tilt_axis_angle_degrees) == ("tomo5", 86.2)


def test_missing_axis_header_waits_for_the_session_axis(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-1"
    simulate_small(session, axis_header=False)
    with pytest.raises(MissingSessionValueError, match="tilt axis"):
        read_mdoc(session / "Position_1.mdoc")
    info = read_mdoc(session / "Position_1.mdoc", SessionParameters(version=1, tilt_axis_angle_degrees=85.0))
    assert info.tilt_axis_source == "session"


def test_uncalibrated_dose_is_written_as_zero_and_read_as_unknown(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-1"
    (truth,) = simulate_small(session, exposure_dose_written=False)
    assert set(mdocfile.read(session / "Position_1.mdoc")["ExposureDose"]) == {0.0}
    info = read_mdoc(session / "Position_1.mdoc")
    assert not info.dose_known()
    given = read_mdoc(session / "Position_1.mdoc", SessionParameters(dose_per_tilt_e_per_angstrom2=3.0))
    assert [t.prior_dose_e_per_angstrom2 for t in given.tilts] == pytest.approx(
        [t.prior_dose_e_per_angstrom2 for t in truth.tilts]
    )


def test_local_datetime_comes_back_as_the_true_utc(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-1"
    (truth,) = simulate_small(session, microscope_time_zone="Asia/Tokyo")
    first = (session / "Position_1.mdoc").read_text().split("DateTime = ")[1].splitlines()[0]
    first_utc = datetime.fromisoformat(truth.tilts[0].acquired_at)
    assert first == serialem_datetime(first_utc.astimezone(ZoneInfo("Asia/Tokyo")))  # local: UTC+9
    assert first_utc.hour == 9
    info = read_mdoc(session / "Position_1.mdoc", SessionParameters(time_zone="Asia/Tokyo"))
    assert [t.acquired_at for t in info.tilts] == [datetime.fromisoformat(t.acquired_at) for t in truth.tilts]


def test_eer_session_movies_are_inspected_and_rendered(tmp_path: Path) -> None:
    """A session written as EER (Falcon 4i): the source sees electron frames (SerialEM's NumSubFrames
    counts them), and the motion-correction reader groups them back into the movie frames."""
    session = tmp_path / "cm40000-1"
    truth = simulate_small(session, movie_format="eer", eer_frames_per_frame=4)
    movie = session / truth[0].tilts[0].movie
    frames = int(mdocfile.read(session / "Position_1.mdoc")["NumSubFrames"][0])
    header = inspect_movie(movie, frames)
    assert (header.movie_format, header.frame_count) == ("eer", frames)
    with movie.open("rb") as stream:
        rendered = read_movie(stream, "eer", frames, EerRendering(4))
    assert rendered.shape == (frames // 4, header.height_pixels, header.width_pixels)
    assert rendered.sum() > 0
