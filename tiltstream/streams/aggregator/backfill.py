"""Reading input records Faust skipped, and the group's committed offsets (see ``offsets.py``).

A :class:`PartitionReader` is a confluent-kafka consumer that carries the aggregator's group id only to
look up its committed offsets: it never subscribes, so it never joins the group, and never commits.
Its calls block; the application runs them in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

from tiltstream.settings import KafkaSettings
from tiltstream.streams.aggregator.offsets import TopicPartition as TP
from tiltstream.streams.clients import create_consumer

__all__ = ["PartitionReader", "RawRecord", "header_pairs"]


@dataclass(frozen=True)
class RawRecord:
    """An input record as bytes, with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def header_pairs(headers: Any) -> tuple[tuple[str, bytes], ...]:
    """A message's headers (pairs, as confluent-kafka and aiokafka give them, or None) as a tuple."""
    return tuple((str(k), bytes(v or b"")) for k, v in (headers or []))


class PartitionReader:
    """Committed offsets of a group, and records of one partition between two offsets."""

    def __init__(self, kafka: KafkaSettings, group_id: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._consumer = create_consumer(
            kafka,
            group_id,
            **{"enable.auto.commit": False, "isolation.level": "read_uncommitted", "client.id": "backfill"},
        )

    def committed(self, tps: Sequence[TP]) -> dict[TP, int]:
        """Where the group resumes each partition: its committed offset, else the log start."""
        found = self._consumer.committed([TopicPartition(t, p) for t, p in tps], timeout=self.timeout)
        out: dict[TP, int] = {}
        for part in found:
            if part.error is not None:
                raise KafkaException(part.error)
            offset = part.offset
            if offset == OFFSET_INVALID or offset < 0:
                offset, _ = self._consumer.get_watermark_offsets(
                    TopicPartition(part.topic, part.partition), timeout=self.timeout
                )
            out[(part.topic, part.partition)] = offset
        return out

    def ends(self, tps: Sequence[TP]) -> dict[TP, int]:
        """The high watermark (the offset the next record will get) of each partition."""
        return {
            (t, p): self._consumer.get_watermark_offsets(TopicPartition(t, p), timeout=self.timeout)[1]
            for t, p in tps
        }

    def read(self, tp: TP, start: int, end: int, max_records: int = 500) -> tuple[list[RawRecord], int]:
        """Records of ``tp`` from ``start`` up to (not including) ``end``, at most ``max_records``.

        Returns them with the offset to continue from (``end`` once the range is exhausted; offsets
        without a record, such as transaction markers, are passed over).
        """
        topic, partition = tp
        self._consumer.assign([TopicPartition(topic, partition, start)])
        records: list[RawRecord] = []
        next_offset = start
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                position = self._consumer.position([TopicPartition(topic, partition)])[0].offset
                next_offset = max(next_offset, position)  # negative (unknown) until the first fetch
                if next_offset >= end:
                    return records, end
                if len(records) >= max_records:
                    return records, next_offset
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}[{partition}]: offsets {next_offset}..{end - 1} not read")
                for message in self._consumer.consume(num_messages=max_records - len(records), timeout=0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(error)
                    offset = message.offset()
                    if offset is None or offset >= end:
                        return records, end
                    records.append(
                        RawRecord(
                            topic=topic,
                            partition=partition,
                            offset=offset,
                            key=message.key(),
                            value=message.value(),
                            headers=header_pairs(message.headers()),
                        )
                    )
                    next_offset = offset + 1
        finally:
            self._consumer.unassign()

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()
