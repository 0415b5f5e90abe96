"""The schemas topic: every writer schema on the cluster, keyed by fingerprint.

``schemas/`` in the repository is the registry of record, but a service only knows the schemas of the
version it was built from. When a newer service writes events with a newer (compatible) schema, an
older reader would meet an unknown fingerprint. So writers publish each schema they use to the
compacted ``<prefix>.schemas`` topic (key: the fingerprint in hex; value: the self-contained schema as
JSON) before their first event of it, and readers look unknown fingerprints up there, verify the
fingerprint, and resolve the event into their own version of the record.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tiltstream.log import get_logger
from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue, Topic
from tiltstream.streams.clients import consumer_config
from tiltstream.streams.delivery import Delivery, wait_for_deliveries
from tiltstream.streams.reader import watermarks_with_retry
from tiltstream.streams.schema_registry import RegisteredSchema, schema_fingerprint
from tiltstream.streams.serde import AvroSerde

__all__ = [
    "SchemaTopicResolver",
    "publish_schemas",
    "schema_aware_serde",
    "schema_message",
    "sync_schemas",
]

log = get_logger(__name__)


def schema_message(entry: RegisteredSchema) -> tuple[bytes, bytes]:
    """Key and value of a schema's record on the schemas topic."""
    key = f"{entry.fingerprint:016x}".encode()
    value = json.dumps(entry.schema, sort_keys=True, separators=(",", ":")).encode()
    return key, value


def publish_schemas(
    producer: Producer, topic: Topic, entries: Iterable[RegisteredSchema], timeout: float = 30.0
) -> int:
    """Write ``entries`` to the schemas topic and wait until the broker has them; returns the count.

    Publishing the same schema again is harmless: the topic is compacted by fingerprint.
    """
    deliveries = []
    for entry in entries:
        key, value = schema_message(entry)
        delivery = Delivery(topic.name, key.decode())
        producer.produce(
            topic.name,
            value,
            key,
            headers=[("record", entry.name.encode())],
            on_delivery=delivery._on_delivery,
        )
        deliveries.append(delivery)
    wait_for_deliveries(producer, deliveries, timeout)
    return len(deliveries)


class SchemaTopicResolver:
    """Look fingerprints up on the schemas topic; a resolver for :class:`~tiltstream.streams.serde.AvroSerde`.

    The whole topic is read on a miss (it is small and compacted); a fingerprint that is still
    unknown is not looked up again for ``retry_seconds``, so garbage bytes cannot stall a consumer.

    Parameters
    ----------
    settings
        The cluster.
    topic
        The schemas topic (:meth:`~tiltstream.streams.catalogue.Catalogue.schemas_topic`).
    """

    def __init__(
        self, settings: KafkaSettings, topic: Topic, *, retry_seconds: float = 5.0, timeout: float = 10.0
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self._schemas: dict[int, dict[str, Any]] = {}
        self._misses: dict[int, float] = {}
        self._lock = threading.Lock()
        self.reads = 0

    def __call__(self, fingerprint: int) -> dict[str, Any] | None:
        """The schema with ``fingerprint``, or None when the schemas topic does not have it."""
        with self._lock:
            if fingerprint in self._schemas:
                return self._schemas[fingerprint]
            missed = self._misses.get(fingerprint)
            if missed is not None and time.monotonic() - missed < self.retry_seconds:
                return None
            self.refresh()
            found = self._schemas.get(fingerprint)
            if found is None:
                self._misses[fingerprint] = time.monotonic()
            return found

    def known_fingerprints(self) -> set[int]:
        """Fingerprints of every schema read from the topic so far (call :meth:`refresh` first)."""
        with self._lock:
            return set(self._schemas)

    def refresh(self) -> None:
        """Read the whole schemas topic again."""
        self.reads += 1
        config = consumer_config(
            self.settings,
            f"tiltstream-schemas-{uuid.uuid4().hex[:12]}",
            **{"enable.auto.commit": False, "enable.partition.eof": True},
        )
        consumer = Consumer(config)
        try:
            metadata = consumer.list_topics(self.topic.name, timeout=self.timeout)
            found = metadata.topics.get(self.topic.name)
            if found is None or found.error is not None:
                log.warning("schemas topic missing", topic=self.topic.name)
                return
            partitions = []
            for number in found.partitions:
                low, high = watermarks_with_retry(
                    consumer, TopicPartition(self.topic.name, number), self.timeout
                )
                if high > low:
                    partitions.append(TopicPartition(self.topic.name, number, low))
            open_partitions = {tp.partition for tp in partitions}
            consumer.assign(partitions)
            deadline = time.monotonic() + self.timeout
            while open_partitions and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(int(message.partition() or 0))
                    continue
                self._learn(message.key(), message.value())
        finally:
            consumer.close()

    def _learn(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        try:
            schema = json.loads(value)
            fingerprint = schema_fingerprint(schema)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "unreadable entry on the schemas topic", key=key.decode(errors="replace"), error=str(exc)
            )
            return
        if f"{fingerprint:016x}".encode() != key:
            log.warning(
                "schemas topic entry does not match its fingerprint", key=key.decode(errors="replace")
            )
            return
        self._schemas[fingerprint] = schema


def schema_aware_serde(settings: KafkaSettings, catalogue: Catalogue) -> AvroSerde:
    """A serde for the package's schemas that learns newer writers' schemas from the schemas topic."""
    return AvroSerde(resolver=SchemaTopicResolver(settings, catalogue.schemas_topic()))


def sync_schemas(
    settings: KafkaSettings, producer: Producer, catalogue: Catalogue, entries: Iterable[RegisteredSchema]
) -> tuple[int, int]:
    """Publish the ``entries`` the schemas topic lacks; returns (published, already there)."""
    resolver = SchemaTopicResolver(settings, catalogue.schemas_topic())
    resolver.refresh()
    present = resolver.known_fingerprints()
    wanted = {entry.fingerprint: entry for entry in entries}
    missing = [entry for fingerprint, entry in wanted.items() if fingerprint not in present]
    publish_schemas(producer, catalogue.schemas_topic(), missing)
    return len(missing), len(wanted) - len(missing)
