"""Shared fixtures: one real Kafka broker per test session, unique topics and consumer groups.

Under pytest-xdist (two workers, ``--dist loadfile``) each worker is a test session of its own: its own
broker, database servers and temporary directories, all on free ports; topics, consumer groups and
databases carry random names, so the workers never meet. A module's tests stay on one worker, so a
module-scoped fixture (the end-to-end run, the browser's server) starts once.

Set ``TILTSTREAM_TEST_BOOTSTRAP_SERVERS`` to run against a broker that is already up; otherwise the session
starts a :class:`~tiltstream.streams.broker.LocalBroker` on free loopback ports in a temporary directory
(fetching Kafka's jars into the usual cache the first time) and stops it at the end.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tiltstream.settings import CliSettings, KafkaSettings, LocalBrokerSettings, TopicSettings
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.schema_history import freeze_history
from tiltstream.streams.schema_registry import SchemaRegistry, schemas_directory

pytest_plugins = ["ispyb_fixtures", "source_fixtures", "aggregator_fixtures"]

#: The longest module, collected first: with ``-n 2 --dist loadfile`` (pyproject's ``addopts``) one
#: worker starts on it at once while the other takes the rest, so the run ends about when it does.
LONGEST_FIRST = ("test_end_to_end.py",)

BOOTSTRAP_ENV = "TILTSTREAM_TEST_BOOTSTRAP_SERVERS"

TopicFactory = Callable[..., str]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of :data:`LONGEST_FIRST` first; the others keep their order (the sort is stable)."""
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)


def local_broker_settings(state_dir: Path) -> LocalBrokerSettings:
    """Settings for a throw-away test broker: free ports, a small heap, everything else from the env."""
    return LocalBrokerSettings(state_dir=state_dir, port=0, controller_port=0, heap_megabytes=512)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Kafka broker for the whole session."""
    existing = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if existing:
        yield existing
        return
    broker = LocalBroker(local_broker_settings(tmp_path_factory.mktemp("kafka")))
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        gc.collect()  # drop idle clients first, so that they do not log reconnect failures
        broker.stop()


@pytest.fixture
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """An admin client on the session's broker."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap, "log.connection.close": False})


@pytest.fixture
def topic_factory(kafka_admin: AdminClient) -> Iterator[TopicFactory]:
    """Create uniquely named topics (``<prefix>-<uuid>``); they are deleted after the test.

    Call it as ``topic_factory(partitions=3, prefix="events", config={...})``; it returns the name.
    """
    created: list[str] = []

    def create(partitions: int = 1, *, prefix: str = "test", config: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        kafka_admin.create_topics([topic], operation_timeout=15)[name].result(timeout=20)
        created.append(name)
        return name

    yield create
    if created:
        for future in kafka_admin.delete_topics(created, operation_timeout=15).values():
            with contextlib.suppress(Exception):  # best effort: already deleted, a slow broker
                future.result(timeout=20)


@pytest.fixture
def group_id() -> str:
    """A consumer group name no other test uses."""
    return f"test-group-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pipeline_settings(kafka_bootstrap: str) -> CliSettings:
    """CLI settings on the session's broker with a topic prefix no other test uses (3 partitions)."""
    return CliSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="tiltstream-test"),
        topics=TopicSettings(prefix=f"t{uuid.uuid4().hex[:10]}", partitions=3),
    )


@pytest.fixture
def evolved_schemas(tmp_path: Path) -> Path:
    """A copy of schemas/ where MovieAcquired gained an optional field, frozen as history v2."""
    directory = tmp_path / "evolved-schemas"
    shutil.copytree(schemas_directory(), directory)
    path = directory / "tiltstream.events.MovieAcquired.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append(
        {"name": "stage_z_micrometres", "type": ["null", "double"], "default": None, "doc": "Stage z."}
    )
    path.write_text(json.dumps(schema))
    freeze_history(SchemaRegistry(directory))
    return directory
