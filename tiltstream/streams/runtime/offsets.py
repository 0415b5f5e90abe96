"""Which offsets a group member may store: never one past a message that is not done.

Messages of a partition arrive in offset order but may be finished out of order (a dead letter sent
while an earlier job still runs, a batch written after a later skip). The tracker stores, per
partition, only the end of the prefix of messages that are all acknowledged, so no offset is ever
committed past unfinished work, whatever order the work finishes in.
"""

from __future__ import annotations

from collections.abc import Iterable

from tiltstream.streams.runtime.decoding import Partition

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Messages in flight per assigned partition, and the position that may be stored."""

    def __init__(self) -> None:
        self._epochs: dict[Partition, int] = {}
        self._open: dict[Partition, dict[int, bool]] = {}
        self._stored: dict[Partition, int] = {}

    @property
    def partitions(self) -> frozenset[Partition]:
        """The partitions assigned now."""
        return frozenset(self._open)

    def assigned(self, partitions: Iterable[Partition]) -> None:
        """Start a new epoch for each of ``partitions``: acknowledgements of older reads store nothing."""
        for partition in partitions:
            self._epochs[partition] = self._epochs.get(partition, 0) + 1
            self._open[partition] = {}

    def revoked(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Forget ``partitions``; return the positions stored for them (to commit before letting go)."""
        stored = {}
        for partition in partitions:
            self._open.pop(partition, None)
            if partition in self._stored:
                stored[partition] = self._stored.pop(partition)
        return stored

    def track(self, partition: Partition, offset: int) -> int | None:
        """Note a polled message as in flight; its partition's epoch, or None when not assigned."""
        open_offsets = self._open.get(partition)
        if open_offsets is None:
            return None
        if open_offsets and offset <= next(reversed(open_offsets)):
            open_offsets.clear()  # the position moved back (a seek): what was in flight comes again
        open_offsets[offset] = False
        return self._epochs[partition]

    def ack(self, partition: Partition, offset: int, epoch: int) -> int | None:
        """Mark a message done; the new position to store when the done prefix grew, else None."""
        open_offsets = self._open.get(partition)
        if open_offsets is None or self._epochs.get(partition) != epoch or offset not in open_offsets:
            return None
        open_offsets[offset] = True
        advanced: int | None = None
        while open_offsets:
            first = next(iter(open_offsets))
            if not open_offsets[first]:
                break
            del open_offsets[first]
            advanced = first + 1
        if advanced is not None:
            self._stored[partition] = advanced
        return advanced

    def in_flight(self, partition: Partition) -> int:
        """How many polled messages of ``partition`` are not done."""
        return sum(not done for done in self._open.get(partition, {}).values())
