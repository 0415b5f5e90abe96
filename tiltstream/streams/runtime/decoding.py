"""Turning a polled message into an event: the reinjection filter, decoding, validation.

Every consumer of the pipeline goes through :class:`MessageDecoder`: the group members (processors,
the ISPyB sink) through :class:`~tiltstream.streams.consumer.EventConsumer`, readers outside a group
(the web view's follower) through :func:`~tiltstream.streams.reader.read_events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from confluent_kafka import Message

from tiltstream.streams.dlq import is_for_group
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.events import CODECS
from tiltstream.streams.serde import AvroSerde, DecodedEvent
from tiltstream.streams.validation import check_event

__all__ = ["ConsumedEvent", "MessageDecoder", "Partition", "position"]

#: ``(topic, partition)``
Partition = tuple[str, int]


class _Record(Protocol):
    """What the validation needs of a typed record of :mod:`tiltstream.streams.events`."""

    def to_dict(self) -> dict[str, Any]: ...


_R = TypeVar("_R", bound=_Record)


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
            self._check(decoded.record, decoded.value, (topic, partition, offset))
        return decoded

    def decode_typed_bytes(
        self, data: bytes | None, reader: type[_R], *, topic: str, partition: int, offset: int
    ) -> _R:
        """:meth:`decode_bytes` straight into ``reader``, a record class of :mod:`~tiltstream.streams.events`.

        The same checks and errors; the value is checked in its dict form.

        Raises
        ------
        UndecodableEventError
            Bytes that are not an event of the catalogue, or one written for another record.
        InvalidEventError
            (a subclass) An event whose values cannot be true, naming the field and the reason.
        """
        event = self.serde.decode_typed(data, reader, topic=topic, partition=partition, offset=offset)
        if self.validate:
            self._check(CODECS[reader].record, event.to_dict(), (topic, partition, offset))
        return event

    @staticmethod
    def _check(record: str, value: dict[str, Any], where: tuple[str, int, int]) -> None:
        """:func:`check_event`, the refusal naming where the event was read."""
        try:
            check_event(record, value)
        except InvalidEventError as exc:
            if exc.topic is not None:
                raise
            topic, partition, offset = where
            raise InvalidEventError(
                exc.record, exc.field, exc.reason, topic=topic, partition=partition, offset=offset
            ) from exc

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
