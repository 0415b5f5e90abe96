"""Sending events: encode with the catalogue's schema, key by tilt series, track acknowledgement."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.serde import AvroSerde

__all__ = ["Delivery", "DeliveryError", "EventProducer", "wait_for_deliveries"]

Headers = Sequence[tuple[str, bytes | str]]


class DeliveryError(Exception):
    """The broker did not acknowledge a message (it may or may not have been written)."""


@dataclass
class Delivery:
    """Acknowledgement state of one produced message, filled in by the delivery callback."""

    topic: str
    key: str | None
    done: bool = False
    error: KafkaError | None = None
    partition: int | None = None
    offset: int | None = None

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        self.done = True
        self.error = error
        if error is None:
            self.partition = message.partition()
            self.offset = message.offset()


def wait_for_deliveries(producer: Producer, deliveries: Iterable[Delivery], timeout: float = 60.0) -> None:
    """Serve delivery callbacks until every delivery is acknowledged.

    Raises
    ------
    DeliveryError
        When one failed, or was not acknowledged within ``timeout`` seconds.
    """
    pending = list(deliveries)
    deadline = time.monotonic() + timeout
    while any(not d.done for d in pending):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeliveryError(
                f"{sum(not d.done for d in pending)} message(s) not acknowledged in {timeout} s"
            )
        producer.flush(min(remaining, 1.0))
    failed = [d for d in pending if d.error is not None]
    if failed:
        first = failed[0]
        raise DeliveryError(f"{len(failed)} message(s) failed; first to {first.topic}: {first.error}")


class EventProducer:
    """Produce catalogue events with an idempotent producer.

    Parameters
    ----------
    producer
        From :func:`~tiltstream.streams.clients.create_producer`.
    catalogue
        Names the topic for each record.
    serde
        Encodes values in the single-object encoding.
    """

    def __init__(self, producer: Producer, catalogue: Catalogue, serde: AvroSerde | None = None) -> None:
        self.producer = producer
        self.catalogue = catalogue
        self.serde = serde or AvroSerde()

    def send(
        self,
        record: str,
        value: Mapping[str, Any],
        *,
        topic: str | None = None,
        headers: Headers | None = None,
    ) -> Delivery:
        """Encode ``value`` as ``record`` and produce it to its catalogue topic, keyed by tilt series.

        The returned :class:`Delivery` is filled in when the broker acknowledges the message; pass it
        to :meth:`wait` before storing the offset of the input it was made from.
        """
        name = topic or self.catalogue.for_record(record).name
        key = str(value["metadata"]["tilt_series_id"])
        payload = self.serde.encode(record, value)
        delivery = Delivery(name, key)
        while True:
            try:
                self.producer.produce(
                    name,
                    payload,
                    key.encode(),
                    headers=list(headers or []),
                    on_delivery=delivery._on_delivery,
                )
                break
            except BufferError:  # local queue full: serve callbacks and try again
                self.producer.poll(0.1)
        self.producer.poll(0)
        return delivery

    def wait(self, deliveries: Iterable[Delivery], timeout: float = 60.0) -> None:
        """Block until ``deliveries`` are acknowledged (see :func:`wait_for_deliveries`)."""
        wait_for_deliveries(self.producer, deliveries, timeout)

    def flush(self, timeout: float = 60.0) -> None:
        """Send everything queued; raise :class:`DeliveryError` when messages remain after ``timeout``."""
        left = self.producer.flush(timeout)
        if left:
            raise DeliveryError(f"{left} message(s) still queued after {timeout} s")
