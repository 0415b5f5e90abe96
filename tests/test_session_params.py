"""Session parameters as versioned events: ``tiltstream session set|show`` on the real broker, and the
watcher applying the latest version (a series that waited for its voltage goes on, events record the
version)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from source_fixtures import fast_source_settings, read_topic
from test_source_real_mdoc import DATA, _values, _write_movies
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.connectors.source import Watcher
from tiltstream.connectors.source.parameters import SessionParameters, parse_assignments
from tiltstream.settings import CliSettings


def _cli(settings: CliSettings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(create_app(settings), ["session", *args])
    return result.exit_code, result.output


def test_set_and_show_publish_versions_and_refuse_bad_values(acquisition_settings: CliSettings) -> None:
    code, out = _cli(acquisition_settings, "show", "cm40000-9", "--json")
    assert code == 0, out
    assert json.loads(out)["version"] == 0
    assert _cli(acquisition_settings, "set", "cm40000-9", "voltage_kv=300", "time_zone=Europe/London")[0] == 0
    assert _cli(acquisition_settings, "set", "cm40000-9", "dose_per_tilt_e_per_angstrom2=3.2")[0] == 0
    code, out = _cli(acquisition_settings, "show", "cm40000-9", "--json")
    shown = json.loads(out)
    assert (shown["version"], shown["voltage_kv"], shown["time_zone"]) == (2, 300.0, "Europe/London")
    assert shown["dose_per_tilt_e_per_angstrom2"] == 3.2  # version 2 keeps version 1's values
    code, out = _cli(acquisition_settings, "set", "cm40000-9", "voltage_kv=high")
    assert code == 2
    assert "voltage_kv" in out
    code, out = _cli(acquisition_settings, "set", "cm40000-9", "time_zone=Mars/Olympus")
    assert code == 2
    assert "IANA" in out
    events = _values(acquisition_settings, "SessionParametersSet")
    assert [(e["metadata"]["tilt_series_id"], e["version"]) for e in events] == [
        ("cm40000-9", 1),
        ("cm40000-9", 2),
    ]
    code, out = _cli(acquisition_settings, "set", "cm40000-9", "voltage_kv=")  # unset: back to the mdoc's
    assert json.loads(_cli(acquisition_settings, "show", "cm40000-9", "--json")[1])["voltage_kv"] is None


def test_detector_parameters_are_set_shown_and_wrong_types_refused(acquisition_settings: CliSettings) -> None:
    """Gain orientation, EER grouping and the defect file per session; a value of the wrong type or out of
    range is refused naming the key and why, and nothing is published for it."""
    shown_text = " ".join(_cli(acquisition_settings, "show", "cm40000-8")[1].split())  # as wrapped
    assert shown_text.count("(the motion-correction service's setting)") == 6
    code, out = _cli(
        acquisition_settings,
        "set",
        "cm40000-8",
        "gain_rotation_quarter_turns=1",
        "gain_flip=2",
        "eer_sampling=2",
    )
    assert code == 0, out
    assert (
        _cli(acquisition_settings, "set", "cm40000-8", "eer_group_frames=40", "defect_file=defects.txt")[0]
        == 0
    )
    shown = json.loads(_cli(acquisition_settings, "show", "cm40000-8", "--json")[1])
    assert {k: shown[k] for k in ("version", "gain_rotation_quarter_turns", "gain_flip", "eer_sampling")} == {
        "version": 2,
        "gain_rotation_quarter_turns": 1,
        "gain_flip": 2,
        "eer_sampling": 2,
    }
    assert (shown["eer_group_frames"], shown["defect_file"]) == (40, "defects.txt")
    for assignment, reason in (
        ("gain_flip=3", "gain_flip: Input should be less than or equal to 2"),
        (
            "gain_rotation_quarter_turns=90",
            "gain_rotation_quarter_turns: Input should be less than or equal to 3",
        ),
        ("eer_sampling=1.5", "eer_sampling: Input should be a valid integer"),
        ("eer_group_frames=many", "eer_group_frames: Input should be a valid integer"),
        ("eer_dose_per_output_frame_e_per_angstrom2=0", "greater than 0"),
    ):
        code, out = _cli(acquisition_settings, "set", "cm40000-8", assignment)
        assert code == 2, assignment
        assert reason in " ".join(out.split()), out
    events = _values(acquisition_settings, "SessionParametersSet")
    assert [e["version"] for e in events if e["metadata"]["session_id"] == "cm40000-8"] == [1, 2]
    assert _cli(acquisition_settings, "set", "cm40000-8", "gain_flip=")[0] == 0  # back to the service's
    assert json.loads(_cli(acquisition_settings, "show", "cm40000-8", "--json")[1])["gain_flip"] is None


def test_parse_assignments_merges_over_the_latest() -> None:
    base = SessionParameters(version=4, voltage_kv=200)
    merged = parse_assignments(["tilt_axis_angle_degrees=-86.5"], base)
    assert (merged.voltage_kv, merged.tilt_axis_angle_degrees, merged.version) == (200, -86.5, 4)
    assert parse_assignments(["frame_halves=off"], base).frame_halves is False
    assert parse_assignments(["frame_halves="], merged).frame_halves is None  # back to the service's
    with pytest.raises(ValueError, match="frame_halves"):
        parse_assignments(["frame_halves=sometimes"], base)


def test_a_series_waiting_for_its_voltage_goes_on_when_the_operator_sets_it(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    session.mkdir(parents=True)
    shutil.copy(DATA / "mdocfile_tilt_series.mdoc", session / "TS_01.mrc.mdoc")  # no Voltage line
    names = _write_movies(session, session / "TS_01.mrc.mdoc", 5.4 / 4, wrong="")
    settings = fast_source_settings(acquisition_settings, exit_when_done=False)
    watcher = Watcher(session, settings)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        refusal = _wait_for(acquisition_settings, "ProcessingFailed", 1)
        assert refusal[0]["error_class"] == "MissingSessionValueError"
        assert "voltage_kv" in refusal[0]["error_message"]
        assert read_topic(acquisition_settings, "MovieAcquired") == []  # nothing while it waits
        assert (
            _cli(
                acquisition_settings, "set", "cm40000-1", "voltage_kv=300", "time_zone=UTC", "frame_halves=no"
            )[0]
            == 0
        )
        movies = _wait_for(acquisition_settings, "MovieAcquired", len(names))
    finally:
        stop.set()
        thread.join(15)
    assert {(m["voltage_kv"], m["session_parameters_version"]) for m in movies} == {(300.0, 1)}
    assert {m["frame_halves"] for m in movies} == {False}  # the session's choice travels with each movie
    first = next(m for m in movies if m["acquisition_order"] == 0)
    assert first["acquired_at"].isoformat() == "2015-11-30T15:21:38+00:00"  # zone UTC as set


def _wait_for(
    settings: CliSettings, record: str, count: int, timeout_s: float = 60.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        values = _values(settings, record)
        if len(values) >= count or time.monotonic() > deadline:
            assert len(values) >= count, f"{len(values)} {record} events, expected {count}"
            return values
        time.sleep(0.5)
