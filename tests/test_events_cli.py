"""``tiltstream events dump|tail`` print produced events as JSON lines."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import EVENT_RECORDS, Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import StartAt, read_events
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import default_registry

pytestmark = pytest.mark.kafka


@pytest.fixture
def produced(pipeline_settings: CliSettings) -> EventProducer:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    return EventProducer(create_producer(pipeline_settings.kafka), catalogue)


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_dump_prints_every_event_decoded(pipeline_settings: CliSettings, produced: EventProducer) -> None:
    sent = [sample_event("MovieAcquired", series, tilt) for series in (1, 2) for tilt in range(4)]
    produced.wait([produced.send("MovieAcquired", value) for value in sent])
    result = CliRunner().invoke(
        create_app(pipeline_settings), ["events", "dump", "movie.acquired", "--from-beginning"]
    )
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert len(lines) == len(sent)
    assert {line["record"] for line in lines} == {"MovieAcquired"}
    by_movie = {line["event"]["movie_id"]: line for line in lines}  # type: ignore[index]
    for value in sent:
        line = by_movie[value["movie_id"]]
        assert line["key"] == value["metadata"]["tilt_series_id"]
        event = line["event"]
        assert event["tilt_angle_degrees"] == value["tilt_angle_degrees"]  # type: ignore[index]
        assert event["acquired_at"] == value["acquired_at"].isoformat()  # type: ignore[index]
    # one series lands on one partition
    partitions: dict[object, set[object]] = {line["key"]: set() for line in lines}
    for line in lines:
        partitions[line["key"]].add(line["partition"])
    assert all(len(p) == 1 for p in partitions.values())


def test_dump_filters_by_key_limit_and_since(pipeline_settings: CliSettings, produced: EventProducer) -> None:
    app = create_app(pipeline_settings)
    produced.wait([produced.send("CtfEstimated", sample_event("CtfEstimated", 1, t)) for t in range(3)])
    time.sleep(1.2)
    middle = datetime.now(UTC)
    time.sleep(0.2)
    produced.wait([produced.send("CtfEstimated", sample_event("CtfEstimated", s, 9)) for s in (1, 2, 3)])
    runner = CliRunner()
    key = "cm40000-1:Position_2"
    only_key = _lines(runner.invoke(app, ["events", "dump", "micrograph.ctf-estimated", "--key", key]).stdout)
    assert [line["key"] for line in only_key] == [key]
    limited = _lines(
        runner.invoke(app, ["events", "dump", "micrograph.ctf-estimated", "--limit", "2"]).stdout
    )
    assert len(limited) == 2
    since = _lines(
        runner.invoke(
            app, ["events", "dump", "micrograph.ctf-estimated", "--since", middle.isoformat()]
        ).stdout
    )
    assert sorted(line["event"]["acquisition_order"] for line in since) == [9, 9, 9]  # type: ignore[index]


def test_dump_of_empty_and_unknown_topics(pipeline_settings: CliSettings, produced: EventProducer) -> None:
    runner = CliRunner()
    app = create_app(pipeline_settings)
    empty = runner.invoke(app, ["events", "dump", "tomogram.denoised"])
    assert empty.exit_code == 0
    assert _lines(empty.stdout) == []
    unknown = runner.invoke(app, ["events", "dump", "no.such.topic"])
    assert unknown.exit_code != 0
    assert "unknown topic" in unknown.output


def test_tail_follows_new_events(pipeline_settings: CliSettings, produced: EventProducer) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    produced.wait([produced.send("MovieAcquired", sample_event("MovieAcquired", 5, 0))])  # before the tail
    received: list[tuple[str | None, object]] = []
    ready = threading.Event()

    def follow() -> None:
        for event in read_events(
            pipeline_settings.kafka,
            catalogue.topics(),
            start=StartAt.END,
            follow=True,
            limit=3,
            idle_timeout=30,
            ready=ready,
        ):
            assert event.value is not None
            received.append((event.record, event.value.get("acquisition_order")))

    thread = threading.Thread(target=follow)
    thread.start()
    assert ready.wait(30)  # the tail has fixed its start at the end offsets
    produced.wait([produced.send("MovieAcquired", sample_event("MovieAcquired", 5, t)) for t in (1, 2)])
    produced.wait([produced.send("TomogramDenoised", sample_event("TomogramDenoised", 5, 0))])
    thread.join(40)
    assert not thread.is_alive()
    # order holds within a partition (one series, one topic); across topics it is not defined
    assert [r for r in received if r[0] == "MovieAcquired"] == [("MovieAcquired", 1), ("MovieAcquired", 2)]
    assert ("TomogramDenoised", None) in received
    assert len(received) == 3


def test_dump_shows_the_schemas_topic_as_json(pipeline_settings: CliSettings) -> None:
    app = create_app(pipeline_settings)
    runner = CliRunner()
    assert runner.invoke(app, ["topics", "apply"]).exit_code == 0
    lines = _lines(runner.invoke(app, ["events", "dump", "schemas"]).stdout)
    released = {e.fingerprint for e in default_registry().known() if e.short_name in EVENT_RECORDS}
    assert len(lines) == len(released)
    assert {line["record"] for line in lines} == {"schema"}
    names = {line["event"]["name"] for line in lines}  # type: ignore[index]
    assert "tiltstream.events.MovieAcquired" in names
