"""Consuming events at least once: decode, hand over, store the offset only when told the work is done.

Undecodable messages never stop a consumer: they go to its group's dead-letter topic (acknowledged
by the broker first) and the consumer moves on to the next message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from tiltstream.log import get_logger
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.dlq import DeadLetterSink, is_for_group
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.serde import AvroSerde, DecodedEvent

__all__ = ["ConsumedEvent", "EventConsumer"]

log = get_logger(__name__)


@dataclass(frozen=True)
class ConsumedEvent:
    """A decoded event and where it was read from."""

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_ms: int
    event: DecodedEvent
    message: Message = field(repr=False, compare=False)

    @property
    def record(self) -> str:
        """Short record name, e.g. ``MovieAcquired``."""
        return self.event.short_record


class EventConsumer:
    """A consumer-group member that yields decoded events and dead-letters the rest.

    Parameters
    ----------
    consumer
        From :func:`~tiltstream.streams.clients.create_consumer` (auto offset store disabled).
    catalogue
        Tells which record each topic carries (the reader schema).
    dead_letters
        Where undecodable messages go.
    serde
        Decoder; the package's schemas by default.
    """

    def __init__(
        self,
        consumer: Consumer,
        catalogue: Catalogue,
        dead_letters: DeadLetterSink,
        serde: AvroSerde | None = None,
    ) -> None:
        self.consumer = consumer
        self.catalogue = catalogue
        self.dead_letters = dead_letters
        self.serde = serde or AvroSerde()
        self.dead_lettered = 0

    def subscribe(self, topics: Iterable[str]) -> None:
        """Join the group on ``topics`` (full names)."""
        self.consumer.subscribe(list(topics))

    def _reader(self, topic: str) -> str | None:
        try:
            return self.catalogue.topic(topic).record
        except KeyError:
            return None

    def poll(self, timeout: float = 1.0) -> ConsumedEvent | None:
        """The next decodable event, or None when nothing arrived within ``timeout`` seconds.

        An undecodable message is dead-lettered, its offset stored, and None returned. So is a message
        reinjected from another group's dead-letter topic skipped (that group alone failed on it; this
        one handled the original).

        Raises
        ------
        confluent_kafka.KafkaException
            For a fatal client error (anything but end-of-partition notices).
        """
        message = self.consumer.poll(timeout)
        if message is None:
            return None
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.fatal() or not error.retriable():
                raise KafkaException(error)
            log.warning("consumer error", error=str(error))
            return None
        topic, partition, offset = (
            str(message.topic()),
            int(message.partition() or 0),
            int(message.offset() or 0),
        )
        if not self._for_us(message):
            log.info("skipping a message reinjected for another group", topic=topic, offset=offset)
            self.consumer.store_offsets(message)
            return None
        try:
            event = self.serde.decode(
                message.value(), reader=self._reader(topic), topic=topic, partition=partition, offset=offset
            )
        except UndecodableEventError as exc:
            log.error("dead-lettering undecodable message", error=str(exc), dlq=self.dead_letters.topic.name)
            self.dead_letters.send(message, exc)
            self.consumer.store_offsets(message)
            self.dead_lettered += 1
            return None
        key = message.key()
        _, timestamp = message.timestamp()
        return ConsumedEvent(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key.decode() if isinstance(key, bytes) else key,
            timestamp_ms=timestamp,
            event=event,
            message=message,
        )

    def _for_us(self, message: Message) -> bool:
        """False for a message reinjected from another group's dead-letter topic."""
        return is_for_group(message.headers(), self.dead_letters.topic.name)

    def done(self, consumed: ConsumedEvent) -> None:
        """Mark ``consumed`` processed: its offset is stored and committed with the next commit."""
        self.consumer.store_offsets(consumed.message)

    def commit(self) -> None:
        """Commit stored offsets now, synchronously (e.g. before shutting down)."""
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def close(self) -> None:
        """Commit what is stored and leave the group."""
        self.commit()
        self.consumer.close()
