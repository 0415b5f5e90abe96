"""The local KRaft broker and the three Kafka clients the pipeline uses, against a real broker."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tiltstream.settings import LocalBrokerSettings
from tiltstream.streams.broker import LocalBroker

pytestmark = pytest.mark.kafka

TopicFactory = Callable[..., str]


def local_broker_settings(state_dir: Path) -> LocalBrokerSettings:
    """A throw-away broker on free ports with a small heap; versions and caches from the environment."""
    return LocalBrokerSettings(state_dir=state_dir, port=0, controller_port=0, heap_megabytes=384)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(120)
def test_local_broker_lifecycle_keeps_data_across_restart(tmp_path: Path) -> None:
    settings = local_broker_settings(tmp_path / "broker")
    broker = LocalBroker(settings)
    assert not broker.is_running()
    assert not broker.status().running
    try:
        assert broker.start() is True
        pid = broker.pid
        assert pid is not None
        assert broker.is_running()
        assert broker.startup_seconds is not None
        print(f"\nstart -> healthy: {broker.startup_seconds:.2f} s (Kafka {settings.kafka_version})")
        bootstrap = broker.bootstrap_servers
        status = LocalBroker(settings).status()  # another object sees the same broker via the pid file
        assert status.running
        assert status.pid == pid
        assert status.bootstrap_servers == bootstrap
        assert LocalBroker(settings).start() is False  # already running: a no-op
        assert broker.pid == pid

        topic = f"kept-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(15)
        del admin  # no reconnect noise while the broker is down
        log = broker.log_file.read_text()  # the SLF4J binding works: the broker logs
        assert f"Kafka version: {settings.kafka_version}" in log
        assert "Kafka Server started" in log

        assert broker.stop() is True
        assert not broker.pid_file.exists()
        assert not _alive(pid)
        assert not broker.is_running()
        assert broker.stop() is False

        assert broker.start() is True
        print(f"restart -> healthy: {broker.startup_seconds:.2f} s")
        assert broker.bootstrap_servers == bootstrap  # free ports are re-used when still free
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        metadata = admin.list_topics(timeout=15)
        assert topic in metadata.topics
        assert len(metadata.topics[topic].partitions) == 2
        del admin
    finally:
        broker.stop()
    assert not broker.pid_file.exists()


@pytest.mark.timeout(60)
def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    broker = LocalBroker(local_broker_settings(tmp_path / "broker"))
    broker.state_dir.mkdir(parents=True)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka broker
    assert broker.pid is None
    assert not broker.is_running()
    assert broker.stop() is False
    assert not broker.pid_file.exists()


@pytest.mark.timeout(60)
def test_confluent_kafka_round_trip_with_committed_offsets(
    kafka_bootstrap: str, topic_factory: TopicFactory, group_id: str
) -> None:
    topic = topic_factory(partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(20)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(15) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: dict[bytes, bytes] = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got_key, got_value = message.key(), message.value()
            assert got_key is not None
            assert got_value is not None
            received[got_key] = got_value
        assert received == sent
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        assert sum(tp.offset for tp in committed) == len(sent)
    finally:
        consumer.close()

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # keep a reference until the futures end
    description = admin.describe_consumer_groups([group_id])[group_id].result(10)
    assert description.group_id == group_id
    assert description.members == []  # the consumer left the group on close


@pytest.mark.timeout(60)
def test_aiokafka_producer_and_consumer_group(
    kafka_bootstrap: str, topic_factory: TopicFactory, group_id: str
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    topic = topic_factory(partitions=2)
    values = [f"event-{i}".encode() for i in range(10)]

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for i, value in enumerate(values):
                await producer.send_and_wait(topic, value, key=str(i).encode())
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            received: list[bytes] = []
            async with asyncio.timeout(30):
                while len(received) < len(values):
                    batches = await consumer.getmany(timeout_ms=500)
                    received += [record.value for records in batches.values() for record in records]
            assert sorted(received) == sorted(values)
            assert len(consumer.assignment()) == 2
            await consumer.commit()
            offsets = [await consumer.committed(AioTopicPartition(topic, p)) for p in range(2)]
            assert sum(offset or 0 for offset in offsets) == len(values)
        finally:
            await consumer.stop()

    asyncio.run(scenario())


@pytest.mark.timeout(90)
def test_faust_agent_receives_a_message(
    kafka_bootstrap: str, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    import faust

    topic_name = topic_factory(partitions=1)

    async def scenario() -> list[bytes]:
        app = faust.App(
            f"tiltstream-test-{uuid.uuid4().hex[:8]}",
            broker=f"kafka://{kafka_bootstrap}",
            datadir=str(tmp_path / "faust"),
            store="memory://",
            web_enabled=False,
            autodiscover=False,
            topic_replication_factor=1,
            topic_partitions=1,
        )
        topic = app.topic(topic_name, value_serializer="raw")
        received: list[bytes] = []
        arrived = asyncio.Event()

        @app.agent(topic)
        async def collect(stream):  # type: ignore[no-untyped-def]
            async for value in stream:
                received.append(value)
                arrived.set()

        await app.start()
        try:
            await topic.send(value=b"hello faust")
            await asyncio.wait_for(arrived.wait(), 45)
        finally:
            async with asyncio.timeout(20):
                await app.stop()
        return received

    assert asyncio.run(scenario()) == [b"hello faust"]
