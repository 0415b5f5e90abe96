"""Fixtures of the acquisition tests: small simulated sessions and a watcher against the real broker."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tiltstream.connectors.simulator import SeriesTruth, SimulatorSettings, parse_fault, simulate_session
from tiltstream.connectors.source import SourceSettings, Watcher
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.streams.metadata import event_id
from tiltstream.streams.reader import ReadEvent, read_events

__all__ = [
    "SMALL",
    "acquisition_settings",
    "expected_event_id",
    "fast_source_settings",
    "movie_id_of",
    "read_topic",
    "run_watcher",
    "simulate_small",
]

#: A small, quick session: 256² frames, 3 frames per movie, ±9° by 3° (7 tilts per series).
SMALL: dict[str, Any] = {
    "size_pixels": 256,
    "frames": 3,
    "max_tilt_degrees": 9.0,
    "tilt_step_degrees": 3.0,
    "session_id": "cm40000-1",
    "seed": 7,
}


def simulate_small(session_dir: Path, *faults: str, **overrides: Any) -> list[SeriesTruth]:
    """Simulate a small session in ``session_dir`` with ``faults`` (``KIND:POSITION[:TILT]``)."""
    settings = SimulatorSettings(**{**SMALL, **overrides})
    return simulate_session(session_dir, settings, [parse_fault(f) for f in faults])


def fast_source_settings(pipeline: CliSettings, **overrides: Any) -> SourceSettings:
    """Watcher settings with short settle times for tests."""
    values: dict[str, Any] = {
        "kafka": pipeline.kafka,
        "topics": pipeline.topics,
        "session_id": "cm40000-1",
        "microscope": "m02",
        "poll_interval_seconds": 0.05,
        "mdoc_settle_seconds": 0.1,
        "movie_settle_seconds": 0.5,
        "series_settle_seconds": 1.5,
        "exit_when_done": True,
    }
    values.update(overrides)
    return SourceSettings(**values)


def run_watcher(session_dir: Path, settings: SourceSettings, timeout: float = 60.0, **kw: Any) -> Watcher:
    """Run a watcher until every series ended (``exit_when_done``) or ``timeout``; return it."""
    watcher = Watcher(session_dir, settings, **kw)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    thread.join(timeout)
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the watcher did not stop"
    return watcher


def read_topic(pipeline: CliSettings, record: str) -> list[ReadEvent]:
    """Every event of ``record``'s topic now."""
    catalogue = Catalogue(pipeline.topics)
    return list(read_events(pipeline.kafka, [catalogue.for_record(record)]))


def movie_id_of(series_id: str, movie: str) -> str:
    """The movie id the watcher gives a movie file (see ``events.movie_id``)."""
    return event_id("Movie", series_id, movie.rpartition("/")[2])


def expected_event_id(record: str, series_id: str, *key: object) -> str:
    """The event id of a source event with ``key`` (no causation, attempt 1)."""
    return event_id(record, series_id, *key, "", 1)


@pytest.fixture
def acquisition_settings(pipeline_settings: CliSettings) -> CliSettings:
    """Pipeline settings whose topics exist on the broker."""
    apply_topics(create_admin(pipeline_settings.kafka), Catalogue(pipeline_settings.topics).all_topics())
    return pipeline_settings
