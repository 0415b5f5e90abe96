"""Turning a polled message into an event: the reinjection filter, decoding, validation.

Every consumer of the pipeline goes through :class:`MessageDecoder`: the group members (processors,
the ISPyB sink) through :class:`~tiltstream.streams.consumer.EventConsumer`, readers outside a group
(the web view's follower) through :func:`~tiltstream.streams.reader.read_events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Message

from tiltstream.streams.dlq import is_for_group
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.serde import AvroSerde, DecodedEvent
from tiltstream.streams.validation import check_event

__all__ = ["ConsumedEvent", "MessageDecoder", "Partition", "position"]

#: ``(topic, partition)``
Partition = tuple[str, int]


def position(message: Message) -> tuple[str, int, int]:
    """``(topic, partition, offset)`` of a polled message."""
    return str(message.topic()), int(message.partition() or 0), int(message.offset() or 0)


@dataclass(frozen=True)
class ConsumedEvent:
    """A decoded, valid event and where it was read from.

    ``epoch`` counts the assignments of its partition to this member: an acknowledgement of an event
    read under an earlier assignment stores nothing.
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_ms: int
    event: DecodedEvent
    message: Message = field(repr=False, compare=False)
    epoch: int = 0

    @property
    def record(self) -> str:
        """Short record name, e.g. ``MovieAcquired``."""
        return self.event.short_record

    @property
    def where(self) -> Partition:
        """``(topic, partition)``."""
        return self.topic, self.partition


@dataclass(frozen=True)
class MessageDecoder:
    """The one decode path: skip what is not for us, decode into the reader's schema, validate.

    Parameters
    ----------
    serde
        Decoder (resolving unknown writer schemas through the schemas topic, for services).
    dlq_topic
        The reader's own dead-letter topic, naming it for the reinjection rule
        (:func:`~tiltstream.streams.dlq.is_for_group`): a message reinjected from another group's
        dead-letter topic is not for this reader. A reader outside every group passes a name no
        dead letter is reinjected from, so it skips every reinjected copy (it read the original).
        None (tools that show everything) applies no filter.
    validate
        Refuse values that cannot be true (:func:`~tiltstream.streams.validation.check_event`).
    """

    serde: AvroSerde
    dlq_topic: str | None = None
    validate: bool = True

    def wanted(self, message: Message) -> bool:
        """False for a message reinjected for another group (the reinjection rule)."""
        return self.wanted_headers(message.headers())

    def wanted_headers(self, headers: object) -> bool:
        """:meth:`wanted` for a message's headers as any client gives them (pairs, a dict, None)."""
        return self.dlq_topic is None or is_for_group(headers, self.dlq_topic)

    def decode(self, message: Message, reader: str | None) -> DecodedEvent:
        """Decode ``message`` into record ``reader`` (the writer's own when None) and check it.

        Raises
        ------
        UndecodableEventError
            Bytes that are not an event of the catalogue, naming topic, partition and offset.
        InvalidEventError
            (a subclass) An event whose values cannot be true, naming the field and the reason.
        """
        topic, partition, offset = position(message)
        return self.decode_bytes(message.value(), reader, topic=topic, partition=partition, offset=offset)

    def decode_bytes(
        self, data: bytes | None, reader: str | None, *, topic: str, partition: int, offset: int
    ) -> DecodedEvent:
        """:meth:`decode` for a message's value and position as any client gives them (same errors)."""
        decoded = self.serde.decode(data, reader=reader, topic=topic, partition=partition, offset=offset)
        if self.validate:
            try:
                check_event(decoded.record, decoded.value)
            except InvalidEventError as exc:
                if exc.topic is not None:
                    raise
                raise InvalidEventError(
                    exc.record, exc.field, exc.reason, topic=topic, partition=partition, offset=offset
                ) from exc
        return decoded

    def consumed(self, message: Message, reader: str | None, epoch: int = 0) -> ConsumedEvent:
        """:meth:`decode` ``message`` into a :class:`ConsumedEvent` (same errors)."""
        topic, partition, offset = position(message)
        event = self.decode(message, reader)
        key = message.key()
        _, timestamp = message.timestamp()
        return ConsumedEvent(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key.decode(errors="replace") if isinstance(key, bytes) else key,
            timestamp_ms=int(timestamp),
            event=event,
            message=message,
            epoch=epoch,
        )
