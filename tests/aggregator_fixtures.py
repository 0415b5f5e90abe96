"""Fixtures and helpers for the aggregator's broker tests: real ``tiltstream aggregate`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tiltstream.settings import KafkaSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import ReadEvent, read_events

__all__ = [
    "FAUST_SEEK_RACE",
    "AggregatorProcess",
    "Cluster",
    "aggregator_cluster",
    "fresh_aggregator_cluster",
    "read_topic",
    "wait_for",
    "wait_log",
]

TILTSTREAM = Path(sys.executable).with_name("tiltstream")

#: Environment that makes a ``tiltstream aggregate`` process hit faust-streaming's post-assignment
#: race every time (see ``aggregator_faults/sitecustomize.py``).
FAUST_SEEK_RACE = {
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(Path(__file__).with_name("aggregator_faults")), os.environ.get("PYTHONPATH")) if p
    ),
    "TILTSTREAM_TEST_FAUST_SEEK_RACE": "1",
}


@dataclass
class Cluster:
    """Topics with a unique prefix on the session's broker, and a producer for them."""

    kafka: KafkaSettings
    topics: TopicSettings
    producer: EventProducer
    tmp: Path

    @property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.topics)

    def send(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Produce ``events`` in this order and wait until the broker has them all."""
        self.producer.wait([self.producer.send(record, value) for record, value in events])

    def start(
        self, app_id: str, name: str, *, extra_env: dict[str, str] | None = None, **settings: object
    ) -> AggregatorProcess:
        """Start ``tiltstream aggregate`` with ``TILTSTREAM_AGGREGATOR_<NAME>=value`` settings."""
        env = {
            **os.environ,
            "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "TILTSTREAM_TOPICS_PREFIX": self.topics.prefix,
            "TILTSTREAM_TOPICS_PARTITIONS": str(self.topics.partitions),
            "TILTSTREAM_AGGREGATOR_APP_ID": app_id,
            "TILTSTREAM_AGGREGATOR_DATADIR": str(self.tmp / name),
            "TILTSTREAM_AGGREGATOR_COMMIT_INTERVAL_SECONDS": "0.5",
            "TILTSTREAM_AGGREGATOR_STALL_CHECK_SECONDS": "1",
            "TILTSTREAM_LOG_FORMAT": "json",
        }
        env.update({f"TILTSTREAM_AGGREGATOR_{k.upper()}": str(v) for k, v in settings.items()})
        env.update(extra_env or {})
        return AggregatorProcess(env, self.tmp / f"{name}.log")


class AggregatorProcess:
    """A ``tiltstream aggregate`` subprocess whose output goes to a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.process = subprocess.Popen(
            [str(TILTSTREAM), "aggregate", "--faust-loglevel", "info"],
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    def decided(self) -> list[str]:
        """Log lines of the decisions this process took."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if '"decided"' in line]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and wait for the process to end."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._file.close()


def read_topic(cluster: Cluster, suffix: str) -> list[ReadEvent]:
    """Every event a catalogue topic holds now."""
    return list(read_events(cluster.kafka, [cluster.catalogue.topic(suffix)], timeout=30))


def wait_for(
    cluster: Cluster, suffix: str, done: Callable[[list[ReadEvent]], bool], timeout: float = 120.0
) -> list[ReadEvent]:
    """Read ``suffix`` again until ``done(events)`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_topic(cluster, suffix)
        if done(events):
            return events
        if time.monotonic() > deadline:
            pytest.fail(f"{suffix}: condition not met after {timeout} s ({len(events)} events)")
        time.sleep(0.5)


def _new_cluster(kafka_bootstrap: str, tmp: Path) -> Cluster:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="tiltstream-test")
    topics = TopicSettings(prefix=f"a{uuid.uuid4().hex[:10]}", partitions=3)
    apply_topics(create_admin(kafka), Catalogue(topics).all_topics())
    producer = EventProducer(create_producer(kafka), Catalogue(topics))
    return Cluster(kafka, topics, producer, tmp)


@pytest.fixture(scope="module")
def aggregator_cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Catalogue topics with a unique prefix (3 partitions), laid out, and a producer."""
    cluster = _new_cluster(kafka_bootstrap, tmp_path_factory.mktemp("aggregator"))
    yield cluster
    cluster.producer.flush()


@pytest.fixture
def fresh_aggregator_cluster(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Cluster]:
    """Like ``aggregator_cluster``, for one test: topics no other test has written to."""
    cluster = _new_cluster(kafka_bootstrap, tmp_path)
    yield cluster
    cluster.producer.flush()


def wait_log(process: AggregatorProcess, text: str, count: int = 1, timeout: float = 90.0) -> None:
    """Wait until ``text`` appears ``count`` times in the process's log."""
    deadline = time.monotonic() + timeout
    while process.log.read_text(errors="replace").count(text) < count:
        if process.process.poll() is not None:
            pytest.fail(f"aggregator exited with {process.process.returncode}; see {process.log}")
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} not seen {count} time(s) in {process.log} after {timeout} s")
        time.sleep(0.2)
