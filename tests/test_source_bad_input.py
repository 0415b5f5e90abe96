"""Bad input at the acquisition edge: refused with a ProcessingFailed, and the other series carry on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from source_fixtures import (
    expected_event_id,
    fast_source_settings,
    movie_id_of,
    read_topic,
    run_watcher,
    simulate_small,
)

from tiltstream.connectors.source import PathOutsideRootError
from tiltstream.connectors.source.paths import DataRoot
from tiltstream.settings import CliSettings


def test_data_root_refuses_paths_that_leave_it(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    (root / "s").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (root / "s" / "link").symlink_to(tmp_path / "secret")
    (root / "s" / "inner").symlink_to(root / "s")
    data = DataRoot("raw", root)
    assert data.data_path(root / "s" / "inner") == {"root": "raw", "path": "s"}
    for bad in ("../secret", "/etc/passwd", "s/../../secret"):
        with pytest.raises(PathOutsideRootError):
            data.resolve(bad)
    with pytest.raises(PathOutsideRootError):
        data.check(root / "s" / "link")
    with pytest.raises(PathOutsideRootError):
        data.data_path(root / ".." / "secret")


def test_escaping_links_and_bad_mdocs_are_refused_and_the_rest_goes_on(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    outside = tmp_path / "outside"
    outside.mkdir()
    t1, _t2 = simulate_small(session, positions=2)
    # a movie replaced by a link to a file outside the data root (the same bytes: only the path is wrong)
    victim = session / t1.tilts[3].movie
    shutil.move(victim, outside / victim.name)
    victim.symlink_to(outside / victim.name)
    # an mdoc that is a link out of the root, and one that mdocfile cannot parse
    shutil.copy(session / "Position_2.mdoc", outside / "Position_9.mdoc")
    (session / "Position_9.mdoc").symlink_to(outside / "Position_9.mdoc")
    (session / "Position_3.mdoc").write_text(
        "PixelSpacing = 1.5\nthis line has no equals sign\n\n[ZValue = 0]\n"
    )

    watcher = run_watcher(session, fast_source_settings(acquisition_settings))
    assert watcher.done()

    failures = {
        (e.key, e.value["error_class"]): e.value
        for e in read_topic(acquisition_settings, "ProcessingFailed")
        if e.value
    }
    assert set(failures) == {
        ("cm40000-1:Position_1", "PathOutsideRootError"),
        ("cm40000-1:Position_9", "PathOutsideRootError"),
        ("cm40000-1:Position_3", "MdocParseError"),
    }
    assert all(f["stage"] == "acquisition" and f["failure_kind"] == "permanent" for f in failures.values())
    escaped = failures[("cm40000-1:Position_1", "PathOutsideRootError")]
    assert escaped["movie_id"] == movie_id_of("cm40000-1:Position_1", victim.name)
    assert "outside data root" in escaped["error_message"]
    assert "mdocfile cannot parse" in failures[("cm40000-1:Position_3", "MdocParseError")]["error_message"]

    movies = [e.value for e in read_topic(acquisition_settings, "MovieAcquired") if e.value]
    assert len(movies) == 13  # 14 tilts, one refused
    assert all(not m["movie"]["path"].startswith(("/", "..")) for m in movies)
    ended = {
        e.key: e.value for e in read_topic(acquisition_settings, "TiltSeriesAcquisitionEnded") if e.value
    }
    assert set(ended) == {"cm40000-1:Position_1", "cm40000-1:Position_2"}
    assert ended["cm40000-1:Position_1"]["acquired_tilt_count"] == 6  # 7 sections, one refused
    assert ended["cm40000-1:Position_2"]["acquired_tilt_count"] == 7
    assert ended["cm40000-1:Position_1"]["metadata"]["event_id"] == expected_event_id(
        "TiltSeriesAcquisitionEnded", "cm40000-1:Position_1", "acquisition-ended"
    )


def _edit_section(mdoc: Path, z_value: int, key: str, value: str) -> None:
    """Set ``key = value`` in the ``[ZValue = z_value]`` section of ``mdoc``."""
    sections = mdoc.read_text().split("\n\n")
    for i, section in enumerate(sections):
        if section.startswith(f"[ZValue = {z_value}]"):
            lines = [
                f"{key} = {value}" if line.startswith(f"{key} =") else line for line in section.split("\n")
            ]
            sections[i] = "\n".join(lines)
    mdoc.write_text("\n\n".join(sections))


def test_values_that_cannot_be_true_are_refused_per_movie_and_the_rest_carries_on(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    t1, t2, _t3 = simulate_small(session, positions=3)
    first = session / "Position_1.mdoc"
    _edit_section(first, 1, "TiltAngle", "9999")
    _edit_section(first, 2, "ExposureDose", "NaN")
    nul_name = t1.tilts[4].movie.rpartition("/")[2].replace(".tiff", "\x00.tiff")
    _edit_section(first, 4, "SubFramePath", f"X:\\cm40000-1\\frames\\{nul_name}")
    second = session / "Position_2.mdoc"
    second.write_text(second.read_text().replace("Voltage = 300", "Voltage = inf", 1))
    (session / "Position_4.mdoc").write_text(
        first.read_text().replace("PixelSpacing = 1.5", "PixelSpacing = 0")
    )

    watcher = run_watcher(session, fast_source_settings(acquisition_settings))
    assert watcher.done()

    failures = [e.value for e in read_topic(acquisition_settings, "ProcessingFailed") if e.value]
    by_movie = {f["movie_id"]: f for f in failures if f["movie_id"]}
    assert all(f["error_class"] == "InvalidAcquisitionValueError" for f in failures)
    assert all(f["stage"] == "acquisition" and f["failure_kind"] == "permanent" for f in failures)
    series1 = "cm40000-1:Position_1"
    expected = {
        movie_id_of(
            series1, t1.tilts[1].movie
        ): "MovieAcquired.tilt_angle_degrees: 9999.0 degrees is outside",
        movie_id_of(
            series1, t1.tilts[2].movie
        ): "MovieAcquired.dose_e_per_angstrom2: nan is not a finite number",
        movie_id_of(series1, nul_name): "contains a NUL byte",
    }
    for tilt in t2.tilts:  # an infinite voltage in the header: every movie of the series is refused
        expected[movie_id_of("cm40000-1:Position_2", tilt.movie)] = "MovieAcquired.voltage_kv: inf is not"
    assert set(by_movie) == set(expected)
    for movie, reason in expected.items():
        assert reason in by_movie[movie]["error_message"]
    assert "\x00" not in by_movie[movie_id_of(series1, nul_name)]["error_message"]
    mdoc_refusals = [f for f in failures if f["movie_id"] is None]
    assert [f["metadata"]["tilt_series_id"] for f in mdoc_refusals] == ["cm40000-1:Position_4"]
    assert "pixel_size_angstroms: 0.0 Å is outside (0, 50]" in mdoc_refusals[0]["error_message"]

    movies = [e.value for e in read_topic(acquisition_settings, "MovieAcquired") if e.value]
    per_series = {
        s: sum(m["metadata"]["tilt_series_id"] == s for m in movies)
        for s in {e["metadata"]["tilt_series_id"] for e in movies}
    }
    assert per_series == {
        series1: 4,
        "cm40000-1:Position_3": 7,
    }  # 7 sections, 3 refused; and the intact series
    ended = {
        e.key: e.value for e in read_topic(acquisition_settings, "TiltSeriesAcquisitionEnded") if e.value
    }
    assert set(ended) == {series1, "cm40000-1:Position_2", "cm40000-1:Position_3"}
    assert ended[series1]["acquired_tilt_count"] == 4
    assert ended["cm40000-1:Position_2"]["acquired_tilt_count"] == 0
