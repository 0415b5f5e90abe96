"""A two-position PACE session with a retake, a dark tilt and a corrupt movie, watched end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from source_fixtures import (
    expected_event_id,
    fast_source_settings,
    movie_id_of,
    read_topic,
    run_watcher,
    simulate_small,
)

from tiltstream.connectors.simulator import SeriesTruth
from tiltstream.settings import CliSettings
from tiltstream.streams.reader import ReadEvent

SERIES_1 = "cm40000-1:Position_1"
SERIES_2 = "cm40000-1:Position_2"


def test_pace_session_yields_exactly_the_expected_events(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    truths = simulate_small(session, "retake:1:2", "dark:2:3", "corrupt:2:4", positions=2)
    registry = CollectorRegistry()
    watcher = run_watcher(session, fast_source_settings(acquisition_settings), registry=registry)
    assert watcher.done()

    movies = read_topic(acquisition_settings, "MovieAcquired")
    failed = read_topic(acquisition_settings, "ProcessingFailed")
    ended = read_topic(acquisition_settings, "TiltSeriesAcquisitionEnded")
    by_series: dict[str, list[dict[str, Any]]] = {}
    for e in movies:
        assert e.value is not None
        assert e.key is not None
        assert e.key == e.value["metadata"]["tilt_series_id"]
        by_series.setdefault(e.key, []).append(e.value)

    t1, t2 = truths
    _series_one_in_order_with_its_retake(by_series[SERIES_1], t1)
    _series_two_refuses_the_corrupt_movie(by_series[SERIES_2], failed, t2)

    # every movie's event carries the mdoc's values and names files relative to the data root
    first = by_series[SERIES_1][0]
    assert first["movie"] == {"root": "raw", "path": f"cm40000-1/{t1.tilts[0].movie}"}
    assert first["mdoc"] == {"root": "raw", "path": "cm40000-1/Position_1.mdoc"}
    assert (first["frame_count"], first["image_width_pixels"], first["movie_format"]) == (3, 256, "tiff")
    assert first["pixel_size_angstroms"] == t1.pixel_size_angstroms
    assert first["tilt_axis_angle_degrees"] == t1.nominal_tilt_axis_angle_degrees
    assert first["metadata"]["microscope"] == "m02"
    assert first["position_name"] == "Position_1"
    assert [m["prior_dose_e_per_angstrom2"] for m in by_series[SERIES_1]] == [
        round(t.prior_dose_e_per_angstrom2, 3) for t in t1.tilts
    ]

    _one_end_per_series(ended)

    # metrics count what happened
    def sample(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, labels)
        return float(value or 0.0)

    assert sample("tiltstream_source_events_emitted_total", record="MovieAcquired") == 14
    assert sample("tiltstream_source_events_emitted_total", record="ProcessingFailed") == 1
    assert sample("tiltstream_source_events_emitted_total", record="TiltSeriesAcquisitionEnded") == 2
    assert sample("tiltstream_source_errors_total", error_class="CorruptMovieError") == 1
    assert sample("tiltstream_source_files_seen_total", kind="movie") == 15


def _series_one_in_order_with_its_retake(movies: list[dict[str, Any]], t1: SeriesTruth) -> None:
    """Series 1: 7 tilts + 1 retake, in acquisition order, with the ids derived from the files."""
    assert [m["acquisition_order"] for m in movies] == [t.z_value for t in t1.tilts]
    expected_ids = [
        expected_event_id("MovieAcquired", SERIES_1, movie_id_of(SERIES_1, t.movie)) for t in t1.tilts
    ]
    assert [m["metadata"]["event_id"] for m in movies] == expected_ids
    assert [m["tilt_angle_degrees"] for m in movies] == [t.nominal_tilt_angle_degrees for t in t1.tilts]
    original, retake = (
        m for m in movies if m["tilt_angle_degrees"] == t1.tilts[2].nominal_tilt_angle_degrees
    )
    # the retake is a new movie at the same angle, later in the acquisition: the newer one counts
    assert retake["movie_id"] != original["movie_id"]
    assert retake["acquisition_order"] == original["acquisition_order"] + 1


def _series_two_refuses_the_corrupt_movie(
    movies: list[dict[str, Any]], failed: list[ReadEvent], t2: SeriesTruth
) -> None:
    """Series 2: the corrupt movie is refused, the dark one announced like any other."""
    good = [t for t in t2.tilts if t.fault is None]
    assert [m["acquisition_order"] for m in movies] == [t.z_value for t in good]
    dark = next(t for t in t2.tilts if t.dark)
    assert any(m["movie_id"] == movie_id_of(SERIES_2, dark.movie) for m in movies)
    corrupt = next(t for t in t2.tilts if t.fault == "corrupt")
    corrupt_id = movie_id_of(SERIES_2, corrupt.movie)
    assert len(failed) == 1
    assert failed[0].value is not None
    failure = failed[0].value
    assert (failure["stage"], failure["error_class"], failure["movie_id"]) == (
        "acquisition",
        "CorruptMovieError",
        corrupt_id,
    )
    assert failure["metadata"]["event_id"] == expected_event_id(
        "ProcessingFailed", SERIES_2, corrupt_id, "CorruptMovieError"
    )


def _one_end_per_series(ended: list[ReadEvent]) -> None:
    """One end per series, counting mdoc sections and announced movies (a retake is one more of each)."""
    assert sorted(e.key or "" for e in ended) == [SERIES_1, SERIES_2]
    end = {e.key: e.value for e in ended if e.value is not None}
    assert end[SERIES_1] is not None
    assert end[SERIES_2] is not None
    assert (
        end[SERIES_1]["reason"],
        end[SERIES_1]["expected_tilt_count"],
        end[SERIES_1]["acquired_tilt_count"],
    ) == ("completed", 8, 8)
    assert (end[SERIES_2]["expected_tilt_count"], end[SERIES_2]["acquired_tilt_count"]) == (7, 6)
    assert end[SERIES_1]["metadata"]["event_id"] == expected_event_id(
        "TiltSeriesAcquisitionEnded", SERIES_1, "acquisition-ended"
    )
