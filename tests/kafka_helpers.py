"""Small helpers shared by the tests that consume from the real broker."""

from __future__ import annotations

import time

from tiltstream.streams.consumer import ConsumedEvent, EventConsumer

__all__ = ["drain"]


def drain(consumer: EventConsumer, want: int, timeout: float = 60.0) -> list[ConsumedEvent]:
    """Poll until ``want`` messages were handled (decoded or dead-lettered) or ``timeout`` passed.

    Each decoded event is marked done, as a service would after processing it.
    """
    got: list[ConsumedEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) + consumer.dead_lettered < want and time.monotonic() < deadline:
        event = consumer.poll(0.5)
        if event is not None:
            got.append(event)
            consumer.done(event)
    return got
