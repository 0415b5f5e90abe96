"""A broker restart loses nothing: the idempotent producer writes each event once, the group resumes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from tiltstream.settings import KafkaSettings, LocalBrokerSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import EventConsumer
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(240)
def test_producer_and_consumer_carry_on_across_a_broker_restart(tmp_path: Path) -> None:
    broker = LocalBroker(LocalBrokerSettings(state_dir=tmp_path / "broker", port=0, controller_port=0))
    broker.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        catalogue = Catalogue(TopicSettings(prefix=f"r{uuid.uuid4().hex[:8]}", partitions=2))
        group = f"restart-{uuid.uuid4().hex[:8]}"
        apply_topics(create_admin(kafka), [*catalogue.all_topics(), catalogue.dlq(group)])
        raw = create_producer(kafka)
        producer = EventProducer(raw, catalogue)
        values = [sample_event("CtfEstimated", 1 + i % 4, i) for i in range(20)]
        producer.wait([producer.send("CtfEstimated", v) for v in values[:10]])

        consumer = EventConsumer(
            create_consumer(kafka, group), catalogue, DeadLetterSink(raw, catalogue, group)
        )
        topic = catalogue.topic("micrograph.ctf-estimated").name
        consumer.subscribe([topic])
        seen: list[str] = []

        def consume_until(count: int, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while len(set(seen)) < count and time.monotonic() < deadline:
                event = consumer.poll(0.5)
                if event is not None:
                    seen.append(event.event.value["metadata"]["event_id"])
                    consumer.done(event)

        consume_until(5, 60)
        consumer.commit()

        assert broker.stop() is True
        assert broker.start() is True  # same ports, same data

        sends = [producer.send("CtfEstimated", v) for v in values[10:]]
        producer.wait(sends, timeout=120)
        consume_until(20, 120)
        consumer.close()

        expected = {v["metadata"]["event_id"] for v in values}
        assert set(seen) == expected  # nothing lost
        # nothing written twice: the log holds exactly one record per event
        admin_consumer = create_consumer(kafka, f"{group}-count")
        total = 0
        for partition in range(2):
            low, high = admin_consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            total += high - low
        admin_consumer.close()
        assert total == len(values)
        print(f"\nredeliveries after the restart: {len(seen) - len(set(seen))}")
    finally:
        broker.stop()
