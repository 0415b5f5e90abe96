"""Tracking the broker's acknowledgement of produced messages."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["Delivery", "DeliveryError", "wait_for_deliveries"]


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
