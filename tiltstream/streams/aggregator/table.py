"""The series table as the aggregator reads and writes it, and the grace timer that wakes its series.

Faust can write a table only inside stream iteration, so the timer does not decide anything itself: for
every series whose deadline has passed it sends a tick (key: the series, empty value) to the ticks topic
on the series' partition, and the agent decides when it reads the tick. Deadlines live in the table's
entries, so they survive restarts; this worker keeps an index of them, rebuilt from the whole table every
``rescan_interval_seconds`` and after each rebalance.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tiltstream.streams.aggregator.decide import next_deadline_ms
from tiltstream.streams.aggregator.entry import TableEntry, decode_entry, encode_entry
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.selection import TiltSelection

__all__ = ["GraceTimer", "SeriesTable", "now_ms"]


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class _Message:
    """What Faust's table and RocksDB store read of the current event's message."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class _PartitionEvent:
    """A stand-in for Faust's current event while an entry of ``partition`` is written.

    Faust takes the changelog partition and the RocksDB partition of a table write from the event the
    stream is processing; the entries written at a checkpoint belong to many partitions, so each is
    written with this in Faust's ``current_event`` context variable.
    """

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


@contextmanager
def _writing_in(topic: str, partition: int) -> Iterator[None]:
    from faust.streams import _current_event

    event = _PartitionEvent(topic, partition)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


class SeriesTable:
    """A :class:`TableEntry` per tilt series: Faust's table, and this worker's decoded copy of it.

    An entry is decoded from the table the first time a series is read after an assignment and kept
    in memory; :meth:`put` changes the copy and marks it dirty, and :meth:`flush` (the checkpoint's
    first step) writes the dirty entries to the table. An entry with an outbox is written at once:
    its commands must be durable before they are sent.

    Parameters
    ----------
    table
        The ``faust.Table`` (bytes keys and values).
    rules
        Give each state its next deadline.
    source_topic
        A topic co-partitioned with the table (the ticks topic), named to Faust on every write.
    """

    def __init__(self, table: Any, rules: Rules, source_topic: str) -> None:
        self.table = table
        self.rules = rules
        self.source_topic = source_topic
        #: tilt series -> (table partition, wall-clock ms when the timer must wake it)
        self.deadlines: dict[bytes, tuple[int, int]] = {}
        self.entries: dict[bytes, TableEntry] = {}
        self.dirty: set[bytes] = set()
        self.selections: dict[bytes, TiltSelection] = {}

    def selection(self, key: bytes) -> TiltSelection:
        """The tilt selection of series ``key``, kept beside its decoded entry."""
        found = self.selections.get(key)
        if found is None:
            found = self.selections[key] = TiltSelection(self.rules)
        return found

    def get(self, key: bytes) -> TableEntry | None:
        """The entry of series ``key``, or None when the table holds none."""
        entry = self.entries.get(key)
        if entry is None:
            raw = self.table.get(key)
            if not raw:
                return None
            entry = self.entries[key] = decode_entry(raw)
        return entry

    def put(self, key: bytes, entry: TableEntry) -> None:
        """Keep ``entry``; write it to the table now if it has an outbox, else at the next flush."""
        self.entries[key] = entry
        if entry.outbox:
            self._write(key, entry)
            self.dirty.discard(key)
        else:
            self.dirty.add(key)
        self._index(key, entry)

    def flush(self) -> int:
        """Write every dirty entry to the table (the changelog goes with the producer's next flush)."""
        written = len(self.dirty)
        for key in sorted(self.dirty):
            self._write(key, self.entries[key])
        self.dirty.clear()
        return written

    def forget(self) -> None:
        """Drop the decoded copy (after a revocation: the table is read again when next needed)."""
        self.entries.clear()
        self.dirty.clear()
        self.selections.clear()

    def _write(self, key: bytes, entry: TableEntry) -> None:
        with _writing_in(self.source_topic, entry.partition):
            self.table[key] = encode_entry(entry)

    def rescan(self) -> None:
        """Rebuild the deadlines from every entry this worker holds (its copy, then the table)."""
        self.deadlines.clear()
        for key, raw in list(self.table.items()):
            if key not in self.entries:
                self._index(key, decode_entry(raw))
        for key, entry in self.entries.items():
            self._index(key, entry)

    def due(self, now: int) -> list[tuple[bytes, int]]:
        """``(series, partition)`` of every series whose deadline is ``now`` or earlier."""
        return [(key, partition) for key, (partition, at) in self.deadlines.items() if at <= now]

    def postpone(self, key: bytes, partition: int, until: int) -> None:
        """Do not report ``key`` as due again before ``until`` (ms)."""
        self.deadlines[key] = (partition, until)

    def _index(self, key: bytes, entry: TableEntry) -> None:
        # an entry with an outbox is due at once: its commands must go out
        deadline = 0 if entry.outbox else next_deadline_ms(entry.state, self.rules)
        if deadline is None:
            self.deadlines.pop(key, None)
        else:
            self.deadlines[key] = (entry.partition, deadline)


class GraceTimer:
    """Sends a tick for every series whose deadline passed (run on a Faust timer, on every worker).

    Parameters
    ----------
    app
        The ``faust.App`` (not while it rebalances or recovers).
    table
        The series and their deadlines.
    ticks
        A Faust topic sending to the ticks topic.
    rescan_interval_seconds, tick_interval_seconds
        How often the whole table is looked at; a woken series is looked at again after five ticks.
    """

    def __init__(
        self,
        app: Any,
        table: SeriesTable,
        ticks: Any,
        rescan_interval_seconds: float,
        tick_interval_seconds: float,
    ) -> None:
        self.app = app
        self.table = table
        self.ticks = ticks
        self.rescan_interval_ms = round(rescan_interval_seconds * 1000)
        self.retry_ms = round(tick_interval_seconds * 5000)
        self.rescan_due_ms = 0

    async def wake_expired(self) -> None:
        """Tick every series that is due (after rescanning the table when that is due)."""
        if self.app.rebalancing or self.app.in_recovery:
            return
        now = now_ms()
        if now >= self.rescan_due_ms:
            self.table.rescan()
            self.rescan_due_ms = now + self.rescan_interval_ms
        for key, partition in self.table.due(now):
            await self.ticks.send(key=key, value=b"", partition=partition)
            # the tick will settle it; look again only after another interval
            self.table.postpone(key, partition, now + self.retry_ms)

    async def on_rebalance_complete(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        """Partitions moved and recovery finished: look at every series again at the next wake-up."""
        self.rescan_due_ms = 0
