"""Dead-letter topics: where a consumer group puts the messages it cannot decode or process.

The original key and value are kept byte for byte, on the same partition number, with headers in
Kafka Connect's convention naming where they came from and why they failed, so an operator can
inspect them and reinject them to the original topic once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from tiltstream.log import get_logger
from tiltstream.streams.admin import ApplyAction, apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.delivery import Delivery, DeliveryError, wait_for_deliveries

__all__ = [
    "HEADER_CLASS",
    "HEADER_GROUP",
    "HEADER_MESSAGE",
    "HEADER_OFFSET",
    "HEADER_PARTITION",
    "HEADER_REINJECTED_AT",
    "HEADER_REINJECTED_FROM",
    "HEADER_TIME",
    "HEADER_TOPIC",
    "DeadLetterError",
    "DeadLetterSink",
    "dead_letter_headers",
    "dead_letter_headers_from",
    "is_for_group",
]

HEADER_TOPIC = "__connect.errors.topic"
HEADER_PARTITION = "__connect.errors.partition"
HEADER_OFFSET = "__connect.errors.offset"
HEADER_CLASS = "__connect.errors.exception.class.name"
HEADER_MESSAGE = "__connect.errors.exception.message"
HEADER_GROUP = "tiltstream.errors.group"
HEADER_TIME = "tiltstream.errors.time"
#: On a reinjected message: ``<dlq topic>/<partition>/<offset>`` of the dead letter it came from. The
#: message is meant for that dead-letter topic's group alone; other groups have handled the original.
HEADER_REINJECTED_FROM = "tiltstream.reinjected.from"
HEADER_REINJECTED_AT = "tiltstream.reinjected.at"

_MISSING_TOPIC = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})

log = get_logger(__name__)


class DeadLetterError(Exception):
    """A dead letter is not (known to be) in its topic: the source message's offset must not be stored."""


def dead_letter_headers(
    message: Message, error: BaseException, group_id: str
) -> list[tuple[str, str | bytes | None]]:
    """The original headers plus where the message came from and the error that stopped it."""
    raw = message.headers() or []
    original = list(raw.items()) if isinstance(raw, dict) else list(raw)
    return dead_letter_headers_from(
        str(message.topic()), message.partition(), message.offset(), original, error, group_id
    )


def dead_letter_headers_from(
    topic: str,
    partition: int | None,
    offset: int | None,
    original: Iterable[tuple[str, str | bytes | None]],
    error: BaseException,
    group_id: str,
) -> list[tuple[str, str | bytes | None]]:
    """:func:`dead_letter_headers` from plain values, for records not read with confluent-kafka.

    ``original`` is the message's own headers as ``(name, value)`` pairs; they come first, then Kafka
    Connect's ``__connect.errors.*`` headers and ``tiltstream.errors.group``/``.time``.
    """
    error_class = f"{type(error).__module__}.{type(error).__qualname__}"
    return [
        *original,
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        (HEADER_CLASS, error_class.encode()),
        (HEADER_MESSAGE, str(error).encode()),
        (HEADER_GROUP, group_id.encode()),
        (HEADER_TIME, datetime.now(UTC).isoformat(timespec="milliseconds").encode()),
    ]


def is_for_group(headers: object, dlq_topic: str) -> bool:
    """The reinjection rule: False for a message reinjected from another group's dead-letter topic.

    ``headers`` is a message's headers as confluent-kafka or aiokafka give them (a list of pairs, a
    dict, or None). A message without ``tiltstream.reinjected.from`` is for every group; one with it is
    for the group whose dead-letter topic ``dlq_topic`` it names alone.
    """
    if not headers:
        return True
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:  # type: ignore[attr-defined]
        if name == HEADER_REINJECTED_FROM and value is not None:
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            return text.startswith(f"{dlq_topic}/")
    return True


class DeadLetterSink:
    """Send failed messages to ``<prefix>.dlq.<group>`` and wait until the broker has them.

    The first send creates the dead-letter topic when it is missing (and so does the next send after
    the broker said it is unknown), so a group never dies on its first undecodable message because
    nobody laid its dead-letter topic out.

    Parameters
    ----------
    producer
        An idempotent producer (from :func:`~tiltstream.streams.clients.create_producer`).
    catalogue
        Names and lays out the dead-letter topic.
    group_id
        The consumer group whose dead letters these are.
    admin
        Creates the topic when it is missing; without one, a missing topic fails every send.
    """

    def __init__(
        self, producer: Producer, catalogue: Catalogue, group_id: str, *, admin: AdminClient | None = None
    ) -> None:
        self.producer = producer
        self.topic = catalogue.dlq(group_id)
        self.group_id = group_id
        self.admin = admin
        self._laid_out = admin is None

    def ensure_topic(self) -> None:
        """Create the dead-letter topic if it is missing (once; again after it was found missing).

        An existing topic is left as it is (an operator may have changed its retention).

        Raises
        ------
        DeadLetterError
            When the topic cannot be created (no permission, broker away, another member creating it
            at the same moment): the caller tries again later.
        """
        if self._laid_out or self.admin is None:
            return
        try:
            planned = apply_topics(self.admin, [self.topic], dry_run=True)
            if any(change.action is ApplyAction.CREATED for change in planned):
                apply_topics(self.admin, [self.topic])
                log.warning("dead-letter topic was missing: created it", topic=self.topic.name)
        except ValueError:
            pass  # it exists, with more partitions than the catalogue's: usable as it is
        except (KafkaException, RuntimeError) as exc:
            raise DeadLetterError(f"cannot lay out {self.topic.name}: {exc}") from exc
        self._laid_out = True

    def send(self, message: Message, error: BaseException, timeout: float = 60.0) -> Delivery:
        """Dead-letter ``message`` and block until acknowledged, so its offset can then be stored.

        Raises
        ------
        DeadLetterError
            When the broker did not acknowledge it: the caller keeps the source offset unstored and
            tries again later.
        """
        self.ensure_topic()
        delivery = Delivery(self.topic.name, None)
        partition = message.partition()
        try:
            self.producer.produce(
                self.topic.name,
                message.value(),
                message.key(),
                partition=partition if partition is not None and partition < self.topic.partitions else -1,
                headers=dead_letter_headers(message, error, self.group_id),
                on_delivery=delivery._on_delivery,
            )
            wait_for_deliveries(self.producer, [delivery], timeout)
        except (BufferError, KafkaException, DeliveryError) as exc:
            if delivery.error is not None and delivery.error.code() in _MISSING_TOPIC:
                self._laid_out = self.admin is None  # create it again on the next try
            raise DeadLetterError(f"dead letter to {self.topic.name} not acknowledged: {exc}") from exc
        return delivery
