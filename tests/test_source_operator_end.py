"""``tiltstream acquisition end``: an operator ends a series; the watcher then stays silent about it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from source_fixtures import fast_source_settings, read_topic, simulate_small
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.connectors.source import Watcher
from tiltstream.settings import CliSettings


def test_operator_end_is_announced_once_and_respected(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    simulate_small(session, "retake:1:1")
    acked = threading.Event()
    movies: list[str] = []

    def on_ack(record: str, value: dict[str, Any], at: float) -> None:
        if record == "MovieAcquired":
            movies.append(value["movie_id"])
            if len(movies) == 8:
                acked.set()

    # the watcher would wait ten minutes of quiet before ending the series on its own
    settings = fast_source_settings(acquisition_settings, series_settle_seconds=600.0)
    watcher = Watcher(session, settings, on_acknowledged=on_ack)
    stop = threading.Event()
    runner = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert acked.wait(60)
        cli = create_app(acquisition_settings)
        result = CliRunner().invoke(cli, ["acquisition", "end", "cm40000-1:Position_1"])
        assert result.exit_code == 0, result.output
        assert "8 movies" in result.output
        runner.join(30)  # exit_when_done: it sees the operator's end and stops
        assert not runner.is_alive()
    finally:
        stop.set()
        runner.join(10)
    again = CliRunner().invoke(cli, ["acquisition", "end", "cm40000-1:Position_1"])
    assert again.exit_code == 1
    assert "already ended" in again.output
    unknown = CliRunner().invoke(cli, ["acquisition", "end", "cm40000-1:Position_42"])
    assert unknown.exit_code == 1

    (end,) = [e.value for e in read_topic(acquisition_settings, "TiltSeriesAcquisitionEnded")]
    assert end is not None
    assert (end["reason"], end["acquired_tilt_count"], end["metadata"]["microscope"]) == (
        "operator",
        8,
        "m02",
    )
    assert len(set(movies)) == 8  # the retake is a movie of its own, counted once at its angle
