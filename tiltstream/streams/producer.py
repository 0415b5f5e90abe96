"""Sending events: encode with the catalogue's schema, key by tilt series, track acknowledgement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Producer

from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.delivery import Delivery, DeliveryError, wait_for_deliveries
from tiltstream.streams.schema_topic import publish_schemas
from tiltstream.streams.serde import AvroSerde
from tiltstream.streams.validation import check_event

__all__ = ["EventProducer"]

Headers = Sequence[tuple[str, bytes | str]]


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
    publish_schemas
        Before the first event of each record, write its schema to the schemas topic and wait for the
        acknowledgement, so that readers built from older schemas can resolve it.
    """

    def __init__(
        self,
        producer: Producer,
        catalogue: Catalogue,
        serde: AvroSerde | None = None,
        *,
        publish_schemas: bool = True,
    ) -> None:
        self.producer = producer
        self.catalogue = catalogue
        self.serde = serde or AvroSerde()
        self.publish_schemas = publish_schemas
        self._published: set[int] = set()

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

        Raises
        ------
        InvalidEventError
            ``value`` holds a value that cannot be true (see :func:`~tiltstream.streams.validation.
            check_event`); nothing is sent.
        """
        check_event(record, value, registry=self.serde.registry)
        name = topic or self.catalogue.for_record(record).name
        if self.publish_schemas:
            self._publish_schema(record)
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

    def _publish_schema(self, record: str) -> None:
        entry = self.serde.registry.current(record)
        if entry.fingerprint in self._published:
            return
        publish_schemas(self.producer, self.catalogue.schemas_topic(), [entry])
        self._published.add(entry.fingerprint)

    def wait(self, deliveries: Iterable[Delivery], timeout: float = 60.0) -> None:
        """Block until ``deliveries`` are acknowledged (see :func:`wait_for_deliveries`)."""
        wait_for_deliveries(self.producer, deliveries, timeout)

    def flush(self, timeout: float = 60.0) -> None:
        """Send everything queued; raise :class:`DeliveryError` when messages remain after ``timeout``."""
        left = self.producer.flush(timeout)
        if left:
            raise DeliveryError(f"{left} message(s) still queued after {timeout} s")
