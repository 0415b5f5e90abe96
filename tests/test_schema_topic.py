"""Readers older than their writers learn the writers' schemas from the schemas topic."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer
from kafka_helpers import drain

from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import EventConsumer
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import SchemaRegistry
from tiltstream.streams.schema_topic import SchemaTopicResolver, schema_aware_serde
from tiltstream.streams.serde import AvroSerde

pytestmark = pytest.mark.kafka


def test_old_consumer_reads_newer_writer_through_schemas_topic(
    pipeline_settings: CliSettings, evolved_schemas: Path, group_id: str
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])
    raw = create_producer(pipeline_settings.kafka)
    # a service built from the newer schemas writes v2 events (publishing v2 to the schemas topic first)
    newer = EventProducer(raw, catalogue, AvroSerde(SchemaRegistry(evolved_schemas)))
    values = [{**sample_event("MovieAcquired", 1, t), "stage_z_micrometres": 10.0 + t} for t in range(3)]
    newer.wait([newer.send("MovieAcquired", v) for v in values])

    # a service built from this package's schemas (v1 only) reads them into v1
    old = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
        schema_aware_serde(pipeline_settings.kafka, catalogue),
    )
    old.subscribe([catalogue.topic("movie.acquired").name])
    events = drain(old, 3)
    old.close()
    assert old.dead_lettered == 0
    assert [e.event.value["movie_id"] for e in events] == [v["movie_id"] for v in values]
    assert all("stage_z_micrometres" not in e.event.value for e in events)
    learned = old.serde.writer_schema(events[0].event.writer_fingerprint)
    assert learned.discovered


def test_without_the_schemas_topic_the_newer_event_is_dead_lettered(
    pipeline_settings: CliSettings, evolved_schemas: Path, group_id: str
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])
    raw = create_producer(pipeline_settings.kafka)
    newer = EventProducer(raw, catalogue, AvroSerde(SchemaRegistry(evolved_schemas)))
    newer.wait([newer.send("MovieAcquired", {**sample_event("MovieAcquired"), "stage_z_micrometres": 1.0})])
    blind = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
    )
    blind.subscribe([catalogue.topic("movie.acquired").name])
    assert drain(blind, 1) == []
    blind.close()
    assert blind.dead_lettered == 1


def test_resolver_ignores_forged_entries_and_rate_limits_misses(pipeline_settings: CliSettings) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    topic = catalogue.schemas_topic()
    producer = Producer({"bootstrap.servers": pipeline_settings.kafka.bootstrap_servers})
    schema = {"type": "record", "name": "Forged", "fields": [{"name": "x", "type": "int"}]}
    import json

    producer.produce(topic.name, json.dumps(schema).encode(), b"0123456789abcdef")  # wrong fingerprint
    producer.produce(topic.name, b"{not json", b"fedcba9876543210")
    producer.flush(10)
    resolver = SchemaTopicResolver(pipeline_settings.kafka, topic, retry_seconds=60)
    assert resolver(0x0123456789ABCDEF) is None
    assert resolver(0xFEDCBA9876543210) is None
    reads = resolver.reads
    assert resolver(0x0123456789ABCDEF) is None  # a recent miss is not looked up again
    assert resolver.reads == reads
