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
