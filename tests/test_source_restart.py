"""Restarting the watcher (mid-session, or after the end) emits no new facts and loses none."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from source_fixtures import SMALL, fast_source_settings, movie_id_of, read_topic, run_watcher

from tiltstream.connectors.simulator import SimulatorSettings, parse_fault, simulate_session
from tiltstream.connectors.source import Watcher
from tiltstream.settings import CliSettings

RECORDS = ("MovieAcquired", "ProcessingFailed", "TiltSeriesAcquisitionEnded")


def _ids(pipeline: CliSettings) -> Counter[str]:
    return Counter(
        e.value["metadata"]["event_id"]
        for r in RECORDS
        for e in read_topic(pipeline, r)
        if e.value is not None
    )


def test_restart_mid_session_emits_no_new_facts(tmp_path: Path, acquisition_settings: CliSettings) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    sim = SimulatorSettings(**{**SMALL, "positions": 2, "rate_movies_per_second": 8.0})
    truths: list[Any] = []
    simulator = threading.Thread(
        target=lambda: truths.extend(simulate_session(session, sim, [parse_fault("truncated:1:3")])),
        daemon=True,
    )
    simulator.start()

    # first watcher: stopped (SIGTERM-like) after six movies were acknowledged, while the session goes on
    acked = threading.Event()
    count = Counter[str]()

    def on_ack(record: str, value: dict[str, Any], at: float) -> None:
        count[record] += 1
        if count["MovieAcquired"] >= 6:
            acked.set()

    settings = fast_source_settings(acquisition_settings)
    first = Watcher(session, settings, on_acknowledged=on_ack)
    stop = threading.Event()
    runner = threading.Thread(target=first.run, args=(stop,), daemon=True)
    runner.start()
    assert acked.wait(60)
    stop.set()
    runner.join(20)
    assert not runner.is_alive()
    assert count["TiltSeriesAcquisitionEnded"] == 0  # stopped mid-session

    # second watcher picks up where the first stopped, while the simulator still writes
    second = run_watcher(session, settings, timeout=90)
    simulator.join(60)
    assert second.done()
    assert second.history.event_ids  # it read the first one's facts back
    ids = _ids(acquisition_settings)
    assert max(ids.values()) == 1, "an event was emitted twice"
    expected_movies = {
        movie_id_of(f"cm40000-1:{t.position_name}", tilt.movie)
        for t in truths
        for tilt in t.tilts
        if tilt.fault is None
    }
    announced = {e.value["movie_id"] for e in read_topic(acquisition_settings, "MovieAcquired") if e.value}
    assert announced == expected_movies
    assert len(read_topic(acquisition_settings, "ProcessingFailed")) == 1  # the truncated movie
    assert len(read_topic(acquisition_settings, "TiltSeriesAcquisitionEnded")) == 2

    # a third run over the finished session says nothing at all
    third = run_watcher(session, settings, timeout=60)
    assert third.done()
    assert _ids(acquisition_settings) == ids
