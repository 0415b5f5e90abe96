"""Dead letters the broker has not acknowledged yet, retried with backoff.

While a partition holds one, it is paused (the member keeps polling, so it stays in the group) and
its offset cannot pass the letter: a poison message is never skipped before it is in the dead-letter
topic, and a restart meets it again rather than losing it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from confluent_kafka import Message

from tiltstream.streams.runtime.decoding import Partition, position

__all__ = ["Letter", "PendingLetters"]


@dataclass(frozen=True)
class Letter:
    """A message to dead-letter, why, and the epoch of its partition's assignment it was read in."""

    message: Message
    error: BaseException
    epoch: int

    @property
    def where(self) -> Partition:
        """``(topic, partition)`` of the source message."""
        topic, partition, _ = position(self.message)
        return topic, partition

    @property
    def offset(self) -> int:
        """Offset of the source message."""
        return position(self.message)[2]


class PendingLetters:
    """Letters waiting for another try, in the order they failed, with one shared backoff.

    Parameters
    ----------
    initial_seconds, max_seconds
        The first wait after a failure, doubled per failure up to ``max_seconds``.
    """

    def __init__(self, initial_seconds: float = 1.0, max_seconds: float = 60.0) -> None:
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self._letters: deque[Letter] = deque()
        self._delay = initial_seconds
        self._next_try = 0.0

    def __len__(self) -> int:
        return len(self._letters)

    @property
    def partitions(self) -> frozenset[Partition]:
        """Partitions holding a letter (kept paused until it is sent)."""
        return frozenset(letter.where for letter in self._letters)

    @property
    def delay_seconds(self) -> float:
        """The wait before the next try."""
        return self._delay

    def failed(self, letter: Letter | None = None) -> None:
        """``letter`` (or the head, tried again) failed: keep it and wait longer before the next try."""
        if letter is not None:
            self._letters.append(letter)
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.max_seconds)

    def queue(self, letter: Letter) -> None:
        """Keep ``letter`` behind those already waiting (it is tried with them)."""
        self._letters.append(letter)

    def due(self) -> Letter | None:
        """The head letter when its wait is over, else None."""
        if self._letters and time.monotonic() >= self._next_try:
            return self._letters[0]
        return None

    def sent(self) -> None:
        """The head letter is acknowledged: drop it; the next one is due at once."""
        self._letters.popleft()
        self._next_try = 0.0
        if not self._letters:
            self._delay = self.initial_seconds

    def forget(self, partitions: frozenset[Partition] | set[Partition]) -> None:
        """Drop letters of partitions this member lost (their next owner reads them again)."""
        self._letters = deque(letter for letter in self._letters if letter.where not in partitions)
        if not self._letters:
            self._delay, self._next_try = self.initial_seconds, 0.0
