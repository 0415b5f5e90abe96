"""Operator tools for dead-letter topics: list, inspect and reinject dead letters.

Reinjection puts a dead letter's original key, value and headers back on the topic it came from, with
headers recording where it was reinjected from. A compacted ledger topic per group
(``<prefix>.dlq.<group>.reinjected``, keyed by the dead letter's partition and offset) records what
was reinjected, written after the broker acknowledged the reinjected message, so running
``reinject`` again never sends the same dead letter twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue, Topic
from tiltstream.streams.clients import consumer_config
from tiltstream.streams.delivery import Delivery, wait_for_deliveries
from tiltstream.streams.dlq import (
    HEADER_CLASS,
    HEADER_GROUP,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REINJECTED_AT,
    HEADER_REINJECTED_FROM,
    HEADER_TIME,
    HEADER_TOPIC,
)
from tiltstream.streams.reader import watermarks_with_retry

__all__ = [
    "HEADER_REINJECTED_AT",
    "HEADER_REINJECTED_FROM",
    "DeadLetter",
    "ledger_topic",
    "read_dead_letters",
    "reinject",
]

_OURS = {
    HEADER_TOPIC,
    HEADER_PARTITION,
    HEADER_OFFSET,
    HEADER_CLASS,
    HEADER_MESSAGE,
    HEADER_GROUP,
    HEADER_TIME,
}


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter topic, with where it came from and why it failed."""

    dlq_partition: int
    dlq_offset: int
    key: bytes | None
    value: bytes | None
    source_topic: str
    source_partition: int
    source_offset: int
    error_class: str
    error_message: str
    failed_at: str
    original_headers: list[tuple[str, bytes]] = field(default_factory=list)
    reinjected: bool = False

    @property
    def position(self) -> str:
        """``partition/offset`` in the dead-letter topic: the ledger's key."""
        return f"{self.dlq_partition}/{self.dlq_offset}"

    @property
    def error_name(self) -> str:
        """The exception class without its module, e.g. ``UndecodableEventError``."""
        return self.error_class.rpartition(".")[2]


def ledger_topic(catalogue: Catalogue, group_id: str) -> Topic:
    """The compacted ledger of dead letters already reinjected for ``group_id``."""
    dlq = catalogue.dlq(group_id)
    return Topic(
        name=f"{dlq.name}.reinjected",
        record=None,
        doc=f"Dead letters of {group_id} already reinjected (key: partition/offset).",
        partitions=1,
        replication_factor=dlq.replication_factor,
        config={"cleanup.policy": "compact", "min.insync.replicas": dlq.config["min.insync.replicas"]},
        key="position",
    )


def _read_all(settings: KafkaSettings, topic: str, timeout: float) -> Iterator[tuple[int, int, Message]]:
    """(partition, offset, message) of everything ``topic`` holds now; nothing when it does not exist."""
    consumer = Consumer(
        consumer_config(
            settings,
            f"tiltstream-dlq-reader-{uuid.uuid4().hex[:12]}",
            **{"enable.auto.commit": False, "enable.partition.eof": True},
        )
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        entry = metadata.topics.get(topic)
        if entry is None or entry.error is not None:
            return
        assignment = []
        for number in sorted(entry.partitions):
            low, high = watermarks_with_retry(consumer, TopicPartition(topic, number), timeout)
            if high > low:
                assignment.append(TopicPartition(topic, number, low))
        pending = {tp.partition for tp in assignment}
        consumer.assign(assignment)
        while pending:
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(int(message.partition() or 0))
                    continue
                raise RuntimeError(f"reading {topic}: {error}")
            yield int(message.partition() or 0), int(message.offset() or 0), message
    finally:
        consumer.close()


def _text(headers: dict[str, bytes], name: str) -> str:
    return headers.get(name, b"").decode(errors="replace")


def read_dead_letters(
    settings: KafkaSettings,
    catalogue: Catalogue,
    group_id: str,
    *,
    error_class: str | None = None,
    key: str | None = None,
    timeout: float = 30.0,
) -> list[DeadLetter]:
    """The dead letters of ``group_id``, oldest first per partition, optionally filtered.

    Parameters
    ----------
    error_class
        Keep those whose exception class (full or short name) matches.
    key
        Keep those of this tilt series.
    """
    reinjected = {
        position.decode()
        for _, _, message in _read_all(settings, ledger_topic(catalogue, group_id).name, timeout)
        if (position := message.key()) is not None and message.value() is not None
    }
    letters = []
    for partition, offset, message in _read_all(settings, catalogue.dlq(group_id).name, timeout):
        raw = message.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        headers = {str(k): v if isinstance(v, bytes) else str(v or "").encode() for k, v in pairs}
        letter = DeadLetter(
            dlq_partition=partition,
            dlq_offset=offset,
            key=message.key(),
            value=message.value(),
            source_topic=_text(headers, HEADER_TOPIC),
            source_partition=int(_text(headers, HEADER_PARTITION) or -1),
            source_offset=int(_text(headers, HEADER_OFFSET) or -1),
            error_class=_text(headers, HEADER_CLASS),
            error_message=_text(headers, HEADER_MESSAGE),
            failed_at=_text(headers, HEADER_TIME),
            original_headers=[(k, v) for k, v in headers.items() if k not in _OURS],
            reinjected=f"{partition}/{offset}" in reinjected,
        )
        if error_class and error_class not in (letter.error_class, letter.error_name):
            continue
        if key is not None and (letter.key or b"").decode(errors="replace") != key:
            continue
        letters.append(letter)
    return letters


def reinject(
    producer: Producer, catalogue: Catalogue, group_id: str, letters: list[DeadLetter], timeout: float = 60.0
) -> int:
    """Send ``letters`` (those not reinjected yet) back to their source topics; returns how many.

    Each goes to the partition it came from (so per-series order and co-partitioning hold), with its
    original headers plus ``tiltstream.reinjected.from`` (``<dlq topic>/<partition>/<offset>``) and
    ``tiltstream.reinjected.at``. The ledger is written only after the reinjected messages are
    acknowledged: a crash in between reinjects them again at worst, which idempotent consumers absorb.
    """
    dlq = catalogue.dlq(group_id)
    todo = [letter for letter in letters if not letter.reinjected and letter.source_topic]
    now = datetime.now(UTC).isoformat(timespec="milliseconds").encode()
    deliveries = []
    for letter in todo:
        delivery = Delivery(letter.source_topic, None)
        headers: list[tuple[str, str | bytes | None]] = [
            *letter.original_headers,
            (HEADER_REINJECTED_FROM, f"{dlq.name}/{letter.position}".encode()),
            (HEADER_REINJECTED_AT, now),
        ]
        producer.produce(
            letter.source_topic,
            letter.value,
            letter.key,
            partition=letter.source_partition if letter.source_partition >= 0 else -1,
            headers=headers,
            on_delivery=delivery._on_delivery,
        )
        deliveries.append(delivery)
    wait_for_deliveries(producer, deliveries, timeout)
    ledger = ledger_topic(catalogue, group_id).name
    receipts = []
    for letter in todo:
        receipt = Delivery(ledger, letter.position)
        producer.produce(ledger, now, letter.position.encode(), on_delivery=receipt._on_delivery)
        receipts.append(receipt)
    wait_for_deliveries(producer, receipts, timeout)
    return len(todo)
