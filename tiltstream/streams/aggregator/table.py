"""The series table as the aggregator reads and writes it, and the grace timer that wakes its series.

Faust can write a table only inside stream iteration, so the timer does not decide anything itself: for
every series whose deadline has passed it sends a tick (key: the series, empty value) to the ticks topic
on the series' partition, and the agent decides when it reads the tick. Deadlines live in the table's
entries, so they survive restarts; this worker keeps an index of them, rebuilt from the whole table every
``rescan_interval_seconds`` and after each rebalance.
"""

from __future__ import annotations

import time
from typing import Any

from tiltstream.streams.aggregator.decide import next_deadline_ms
from tiltstream.streams.aggregator.entry import TableEntry, decode_entry, encode_entry
from tiltstream.streams.aggregator.rules import Rules

__all__ = ["GraceTimer", "SeriesTable", "now_ms"]


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class SeriesTable:
    """A :class:`TableEntry` per tilt series in Faust's table, and when each series must be woken.

    Parameters
    ----------
    table
        The ``faust.Table`` (bytes keys and values).
    rules
        Give each state its next deadline.
    """

    def __init__(self, table: Any, rules: Rules) -> None:
        self.table = table
        self.rules = rules
        #: tilt series -> (table partition, wall-clock ms when the timer must wake it)
        self.deadlines: dict[bytes, tuple[int, int]] = {}

    def get(self, key: bytes) -> TableEntry | None:
        """The entry of series ``key``, or None when the table holds none."""
        raw = self.table.get(key)
        return decode_entry(raw) if raw else None

    def put(self, key: bytes, entry: TableEntry) -> None:
        """Write ``entry`` (to the changelog too, sent with the producer's next flush)."""
        self.table[key] = encode_entry(entry)
        self._index(key, entry)

    def rescan(self) -> None:
        """Rebuild the deadlines from every entry this worker's table partitions hold."""
        self.deadlines.clear()
        for key, raw in list(self.table.items()):
            self._index(key, decode_entry(raw))

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
