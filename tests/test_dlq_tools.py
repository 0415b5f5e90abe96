"""``tiltstream dlq list|show|reinject``: inspect dead letters and put them back once the cause is fixed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from confluent_kafka import TopicPartition
from kafka_helpers import drain
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import ConsumedEvent, EventConsumer
from tiltstream.streams.dead_letters import HEADER_REINJECTED_FROM
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import SchemaRegistry
from tiltstream.streams.schema_topic import publish_schemas, schema_aware_serde
from tiltstream.streams.serde import AvroSerde

pytestmark = pytest.mark.kafka


def _end(settings: CliSettings, topic: str, partition: int) -> int:
    consumer = create_consumer(settings.kafka, "watermarks")
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1])
    finally:
        consumer.close()


def _high(settings: CliSettings, topic: str) -> int:
    consumer = create_consumer(settings.kafka, "watermarks")
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3))
    finally:
        consumer.close()


def test_dead_letters_are_listed_shown_and_reinjected_once(
    pipeline_settings: CliSettings, evolved_schemas: Path, group_id: str
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])
    raw = create_producer(pipeline_settings.kafka)
    topic = catalogue.topic("movie.acquired").name
    # a newer service writes v2 events but (misconfigured) never published its schema
    newer_serde = AvroSerde(SchemaRegistry(evolved_schemas))
    newer = EventProducer(raw, catalogue, newer_serde, publish_schemas=False)
    values = [{**sample_event("MovieAcquired", s, 0), "stage_z_micrometres": 2.0} for s in (1, 2)]
    newer.wait([newer.send("MovieAcquired", v) for v in values])
    raw.produce(topic, b"garbage", b"cm40000-1:Position_3")
    raw.flush(10)

    def member(group: str = group_id) -> EventConsumer:
        consumer = EventConsumer(
            create_consumer(pipeline_settings.kafka, group),
            catalogue,
            DeadLetterSink(raw, catalogue, group),
            schema_aware_serde(pipeline_settings.kafka, catalogue),
        )
        consumer.subscribe([topic])
        return consumer

    first = member()
    assert drain(first, 3) == []
    first.close()
    assert first.dead_lettered == 3

    app = create_app(pipeline_settings)
    runner = CliRunner()
    _listed_and_shown(runner, app, group_id, topic)

    before = _high(pipeline_settings, topic)
    dry = runner.invoke(app, ["dlq", "reinject", group_id])
    assert f"3 dead letter(s) -> {topic}" in dry.output
    assert "Dry run" in dry.output
    assert _high(pipeline_settings, topic) == before

    # the cause is fixed (the schema is published); reinject the two real events, not the garbage
    publish_schemas(raw, catalogue.schemas_topic(), [newer_serde.registry.current("MovieAcquired")])
    for series in (1, 2):
        done = runner.invoke(
            app, ["dlq", "reinject", group_id, "--key", f"cm40000-1:Position_{series}", "--execute"]
        )
        assert done.exit_code == 0, done.output
        assert "reinjected 1 dead letter(s)" in done.output
    again = runner.invoke(app, ["dlq", "reinject", group_id, "--key", "cm40000-1:Position_1", "--execute"])
    assert "1 already reinjected" in again.output
    assert "reinjected 0 dead letter(s)" in again.output
    assert _high(pipeline_settings, topic) == before + 2

    second = member()
    events = drain(second, 2)
    second.close()
    assert second.dead_lettered == 0
    assert sorted(e.event.value["movie_id"] for e in events) == sorted(v["movie_id"] for v in values)
    for event in events:
        headers = {k: v for k, v in list(event.message.headers() or []) if isinstance(v, bytes)}
        assert headers[HEADER_REINJECTED_FROM].decode().startswith(catalogue.dlq(group_id).name + "/")
    marked = [
        json.loads(line)
        for line in runner.invoke(app, ["dlq", "show", group_id, "--json"]).stdout.splitlines()
    ]
    assert sorted(m["reinjected"] for m in marked) == [False, True, True]

    # another group handled the originals: it reads every message to the end but gets no reinjected copy
    other_group = f"{group_id}-other"
    apply_topics(create_admin(pipeline_settings.kafka), [catalogue.dlq(other_group)])
    other = member(other_group)
    seen = _read_to_the_end(other, {p: _end(pipeline_settings, topic, p) for p in range(3)})
    other.close()
    assert len(seen) == 2
    assert all(HEADER_REINJECTED_FROM not in dict(e.message.headers() or []) for e in seen)
    assert other.dead_lettered == 1  # the garbage, dead-lettered for this group too


def _listed_and_shown(runner: CliRunner, app: typer.Typer, group_id: str, topic: str) -> None:
    """``dlq list`` counts the three dead letters by class; ``dlq show`` shows them, by key too."""
    listing = runner.invoke(app, ["dlq", "list", "--json"])
    assert listing.exit_code == 0, listing.output
    groups = {row["group"]: row for row in map(json.loads, listing.stdout.splitlines())}
    assert groups[group_id]["dead_letters"] == 3
    assert groups[group_id]["by_error_class"] == {"UndecodableEventError": 3}

    shown = [
        json.loads(line)
        for line in runner.invoke(app, ["dlq", "show", group_id, "--json"]).stdout.splitlines()
    ]
    assert len(shown) == 3
    assert {s["key"] for s in shown} == {
        "cm40000-1:Position_1",
        "cm40000-1:Position_2",
        "cm40000-1:Position_3",
    }
    assert all(s["source"].startswith(f"{topic}[") for s in shown)
    assert sum("fingerprint" in s["error_message"] for s in shown) == 2
    only = runner.invoke(app, ["dlq", "show", group_id, "--json", "--key", "cm40000-1:Position_2"])
    assert len(only.stdout.splitlines()) == 1


def _read_to_the_end(member: EventConsumer, ends: dict[int, int]) -> list[ConsumedEvent]:
    """Every event ``member`` is given until its position reaches ``ends`` on every partition."""
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        polled = member.poll(0.5)
        if polled is not None:
            seen.append(polled)
            member.done(polled)
        assigned = member.consumer.assignment()
        positions = {tp.partition: tp.offset for tp in member.consumer.position(assigned)} if assigned else {}
        if len(positions) == len(ends) and all(positions[p] >= ends[p] for p in ends):
            break
    return seen
