"""Reading topics outside any consumer group: for analysts, the demo and tests.

A reader assigns partitions directly (it never joins or commits for a group, so it cannot disturb
the pipeline's offsets), starts from the beginning, the end or a point in time, and decodes each
event with the catalogue's schema. Dead-letter topics are shown raw, with their error headers.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Topic
from tiltstream.streams.clients import consumer_config
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.runtime.decoding import MessageDecoder
from tiltstream.streams.serde import AvroSerde

__all__ = ["ReadEvent", "StartAt", "read_events", "to_json_line", "watermarks_with_retry"]


class StartAt(StrEnum):
    """Where a reader starts when no time is given."""

    BEGINNING = "beginning"
    END = "end"


@dataclass(frozen=True)
class ReadEvent:
    """One message read from a topic, decoded when it can be."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    record: str | None
    value: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: position, key, record name and the decoded event."""
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": datetime.fromtimestamp(self.timestamp_ms / 1000).astimezone().isoformat(),
            "key": self.key,
            "record": self.record,
            "event": self.value,
        }
        if self.headers:
            out["headers"] = self.headers
        if self.error is not None:
            out["error"] = self.error
            out["raw_base64"] = base64.b64encode(self.raw or b"").decode()
        return out


def _default(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def to_json_line(event: ReadEvent) -> str:
    """One JSON line for ``event`` (datetimes in ISO 8601)."""
    return json.dumps(event.as_dict(), default=_default)


_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
    }
)


def watermarks_with_retry(consumer: Consumer, partition: TopicPartition, timeout: float) -> tuple[int, int]:
    """Low and high offsets, retrying while a new topic's leader is still being elected."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                partition, timeout=max(deadline - time.monotonic(), 0.1)
            )
            return int(low), int(high)
        except KafkaException as exc:
            if exc.args[0].code() not in _TRANSIENT or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _assignment(
    consumer: Consumer, topics: Sequence[Topic], start: StartAt, since: datetime | None, timeout: float
) -> tuple[list[TopicPartition], dict[tuple[str, int], int]]:
    """Concrete start offsets per partition, and each partition's end offset now."""
    metadata = consumer.list_topics(timeout=timeout)
    partitions: list[TopicPartition] = []
    ends: dict[tuple[str, int], int] = {}
    for topic in topics:
        found = metadata.topics.get(topic.name)
        if found is None or found.error is not None:
            raise KeyError(
                f"topic {topic.name} does not exist on the cluster (run `tiltstream topics apply`)"
            )
        for number in sorted(found.partitions):
            low, high = watermarks_with_retry(consumer, TopicPartition(topic.name, number), timeout)
            ends[(topic.name, number)] = high
            partitions.append(TopicPartition(topic.name, number, low if start is StartAt.BEGINNING else high))
    if since is not None:
        wanted = [TopicPartition(p.topic, p.partition, int(since.timestamp() * 1000)) for p in partitions]
        found_offsets = consumer.offsets_for_times(wanted, timeout=timeout)
        partitions = [
            TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else ends[(p.topic, p.partition)])
            for p in found_offsets
        ]
    return partitions, ends


def read_events(
    settings: KafkaSettings,
    topics: Sequence[Topic],
    *,
    start: StartAt = StartAt.BEGINNING,
    since: datetime | None = None,
    key: str | None = None,
    limit: int | None = None,
    follow: bool = False,
    idle_timeout: float | None = None,
    serde: AvroSerde | None = None,
    timeout: float = 30.0,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    decoder: MessageDecoder | None = None,
) -> Generator[ReadEvent, None, None]:
    """Yield the events of ``topics`` in arrival order per partition.

    Parameters
    ----------
    settings
        The cluster.
    topics
        Topics to read (catalogue topics are decoded, dead-letter topics shown raw).
    start
        Beginning or end of each partition, when ``since`` is not given.
    since
        Start at the first event at or after this time.
    key
        Only events of this key (tilt series id).
    limit
        Stop after this many events.
    follow
        Keep waiting for new events (``tail``); otherwise stop at the end offsets seen at the start.
    idle_timeout
        With ``follow``, stop when nothing arrived for this many seconds.
    ready
        Set once the start offsets are fixed: events produced after that are read.
    stop
        When set (from another thread), the reader returns within about half a second.
    decoder
        The consumer runtime's decode path (reinjection filter, validation) for readers that feed a
        view; by default every message is shown, decoded with ``serde`` and not validated.
    """
    decoder = decoder or MessageDecoder(serde or AvroSerde(), validate=False)
    by_name = {topic.name: topic for topic in topics}
    consumer = _reader_consumer(settings)
    try:
        assignment, ends = _assignment(consumer, topics, start, since, timeout)
        consumer.assign(assignment)
        if ready is not None:
            ready.set()
        window = _Window(ends, follow)
        window.open = {
            (tp.topic, tp.partition) for tp in assignment if tp.offset < ends[tp.topic, tp.partition]
        }
        emitted = 0
        last_activity = time.monotonic()
        while not window.done and (limit is None or emitted < limit):
            if stop is not None and stop.is_set():
                return
            message = consumer.poll(0.5)
            if message is None:
                if follow and idle_timeout is not None and time.monotonic() - last_activity > idle_timeout:
                    return
                continue
            if message.error() is None:
                last_activity = time.monotonic()
            if not window.admit(message):
                continue
            raw_key = message.key()
            key_text = raw_key.decode(errors="replace") if isinstance(raw_key, bytes) else raw_key
            if (key is not None and key_text != key) or not decoder.wanted(message):
                continue
            yield _decode(message, by_name[str(message.topic())], decoder, key_text)
            emitted += 1
    finally:
        consumer.close()


def _reader_consumer(settings: KafkaSettings) -> Consumer:
    """A consumer outside every group (a fresh group id, nothing committed) that reports partition ends."""
    config = consumer_config(
        settings,
        f"tiltstream-reader-{uuid.uuid4().hex[:12]}",
        **{"enable.auto.commit": False, "enable.partition.eof": True, "isolation.level": "read_uncommitted"},
    )
    return Consumer(config)


@dataclass
class _Window:
    """What a reader still reads: without ``follow``, each partition up to the end it had at the start."""

    ends: dict[tuple[str, int], int]
    follow: bool
    open: set[tuple[str, int]] = field(default_factory=set)

    @property
    def done(self) -> bool:
        """Every partition read to its end (never, when following)."""
        return not self.follow and not self.open

    def admit(self, message: Any) -> bool:
        """Whether ``message`` is an event inside the window; closes partitions as they reach their end.

        Raises
        ------
        confluent_kafka.KafkaException
            For a client error other than the end-of-partition notice.
        """
        error = message.error()
        where = (str(message.topic()), int(message.partition() or 0))
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            if not self.follow:
                self.open.discard(where)
            return False
        if self.follow:
            return True
        offset = int(message.offset() or 0)
        if offset >= self.ends[where] - 1:
            self.open.discard(where)
        return offset < self.ends[where]


def _decode(message: Any, topic: Topic, decoder: MessageDecoder, key: str | None) -> ReadEvent:
    headers = {
        k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
        for k, v in message.headers() or []
    }
    _, timestamp = message.timestamp()
    partition, offset = int(message.partition()), int(message.offset())
    value = message.value()
    if topic.key == "fingerprint" and value is not None:  # the schemas topic holds JSON, not events
        schema = json.loads(value)
        return ReadEvent(topic.name, partition, offset, int(timestamp), key, "schema", schema, headers)
    try:
        decoded = decoder.decode(message, topic.record)
    except UndecodableEventError as exc:
        return ReadEvent(
            topic.name, partition, offset, int(timestamp), key, None, None, headers, raw=value, error=str(exc)
        )
    return ReadEvent(
        topic.name, partition, offset, int(timestamp), key, decoded.short_record, decoded.value, headers
    )
