"""A poison message goes to the group's dead-letter topic with its headers; the consumer carries on."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer
from kafka_helpers import drain

from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import ConsumedEvent, EventConsumer
from tiltstream.streams.dlq import (
    HEADER_CLASS,
    HEADER_GROUP,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TIME,
    HEADER_TOPIC,
    DeadLetterSink,
)
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event

pytestmark = pytest.mark.kafka


def test_poison_message_is_dead_lettered_and_consumer_continues(
    pipeline_settings: CliSettings, group_id: str
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])
    topic = catalogue.topic("movie.acquired")
    raw = create_producer(pipeline_settings.kafka)
    producer = EventProducer(raw, catalogue)
    series = "cm40000-1:Position_1"
    before = producer.send("MovieAcquired", sample_event("MovieAcquired", 1, 0))
    raw.produce(topic.name, b"\x00not avro at all", series.encode(), headers=[("origin", b"test")])
    after = producer.send("MovieAcquired", sample_event("MovieAcquired", 1, 1))
    producer.wait([before, after])
    raw.flush(10)

    consumer = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
    )
    consumer.subscribe([topic.name])
    events = drain(consumer, 3)  # two events and the poison message between them
    consumer.close()
    assert [e.event.value["acquisition_order"] for e in events] == [0, 1]
    assert consumer.dead_lettered == 1
    poison_offset = before.offset + 1  # type: ignore[operator]

    # the dead letter: same bytes, same key, headers naming where and why
    dlq = Consumer(
        {
            "bootstrap.servers": pipeline_settings.kafka.bootstrap_servers,
            "group.id": f"{group_id}-check",
            "auto.offset.reset": "earliest",
        }
    )
    dlq.subscribe([catalogue.dlq(group_id).name])
    deadline = time.monotonic() + 30
    message = None
    while message is None and time.monotonic() < deadline:
        message = dlq.poll(0.5)
    dlq.close()
    assert message is not None
    assert message.error() is None
    assert message.value() == b"\x00not avro at all"
    assert message.key() == series.encode()
    headers = {k: v if isinstance(v, bytes) else b"" for k, v in list(message.headers() or [])}
    assert headers[HEADER_TOPIC] == topic.name.encode()
    assert headers[HEADER_PARTITION] == str(before.partition).encode()
    assert headers[HEADER_OFFSET] == str(poison_offset).encode()
    assert headers[HEADER_CLASS] == b"tiltstream.streams.errors.UndecodableEventError"
    assert f"{topic.name}[{before.partition}]@{poison_offset}".encode() in headers[HEADER_MESSAGE]
    assert headers[HEADER_GROUP] == group_id.encode()
    assert headers[HEADER_TIME].startswith(b"20")
    assert headers["origin"] == b"test"

    # offsets were committed past the poison message: a restarted member gets nothing again
    again = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
    )
    again.subscribe([topic.name])
    assert drain(again, 1, timeout=8) == []
    assert again.dead_lettered == 0
    again.close()


def test_uncommitted_work_is_redelivered(pipeline_settings: CliSettings, group_id: str) -> None:
    """At least once: an event not marked done comes back to the next member of the group."""
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    raw = create_producer(pipeline_settings.kafka)
    producer = EventProducer(raw, catalogue)
    producer.wait([producer.send("CtfEstimated", sample_event("CtfEstimated", 2, i)) for i in range(3)])
    topic = catalogue.topic("micrograph.ctf-estimated").name

    first = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
    )
    first.subscribe([topic])
    got: list[ConsumedEvent] = []
    deadline = time.monotonic() + 60
    while len(got) < 3 and time.monotonic() < deadline:
        event = first.poll(0.5)
        if event is not None:
            got.append(event)
            if event.event.value["acquisition_order"] == 0:
                first.done(event)  # only the first is finished before the "crash"
    first.close()
    second = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
    )
    second.subscribe([topic])
    again = drain(second, 2)
    second.close()
    assert sorted(e.event.value["acquisition_order"] for e in again) == [1, 2]
