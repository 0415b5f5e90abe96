"""Faust's deliveries of input records, turned into every record processed once and in order.

faust-streaming 0.15.3 can deliver a partition's records again, skip some and lose its tail around a
rebalance (see :mod:`~tiltstream.streams.aggregator.offsets`), so :class:`Intake` keeps the input
offsets itself. For each record Faust delivers, :meth:`Intake.deliver`:

1. starts the partition at the group's committed offset the first time it sees it;
2. skips the record if it is behind the :class:`~tiltstream.streams.aggregator.offsets.Frontier`
   (processed already);
3. reads and processes first the records Faust skipped before it (:meth:`Intake.backfill`, with a
   :class:`~tiltstream.streams.aggregator.backfill.PartitionReader`);
4. processes the record (or, for a nudge, catches its partitions up to their ends);
5. moves the frontier past it.

A timer (:meth:`Intake.nudge_stalled`) nudges partitions that stay behind their end without progress
(an empty-key tick on the ticks topic, which reaches step 4 as a nudge).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tiltstream.log import get_logger
from tiltstream.settings import KafkaSettings
from tiltstream.streams.aggregator.backfill import PartitionReader, RawRecord, header_pairs
from tiltstream.streams.aggregator.checkpoint import faust_tp
from tiltstream.streams.aggregator.handler import RecordHandler
from tiltstream.streams.aggregator.metrics import AggregatorMetrics
from tiltstream.streams.aggregator.offsets import Frontier, TopicPartition

__all__ = ["Intake", "record_from_event"]

log = get_logger(__name__)


def record_from_event(event: Any) -> RawRecord:
    """The :class:`RawRecord` of a Faust event read with the raw codec."""
    message = event.message
    return RawRecord(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        event.value,
        header_pairs(message.headers),
    )


class Intake:
    """Every input record from the committed offset on, once and in order, to ``handler``.

    Parameters
    ----------
    app
        The ``faust.App`` (its consumer's assignment and high watermarks).
    kafka
        For the :class:`PartitionReader`, made on first use.
    handler
        Processes each record; its senders name the input topics and the ticks topic.
    frontier
        The input offsets processed (shared with the checkpoint, which commits them).
    ticks
        A Faust topic sending to the ticks topic (the nudges).
    """

    def __init__(
        self,
        app: Any,
        kafka: KafkaSettings,
        handler: RecordHandler,
        frontier: Frontier,
        metrics: AggregatorMetrics,
        ticks: Any,
    ) -> None:
        self.app = app
        self.kafka = kafka
        self.handler = handler
        self.frontier = frontier
        self.metrics = metrics
        self.ticks_name = handler.senders.ticks_name
        self.source_names = {*handler.senders.inputs, self.ticks_name}
        self.ticks = ticks
        self._reader: PartitionReader | None = None

    @property
    def reader(self) -> PartitionReader:
        """The reader of committed offsets and skipped records (made on first use)."""
        if self._reader is None:
            self._reader = PartitionReader(self.kafka, self.app.conf.id)
        return self._reader

    def assigned_inputs(self) -> set[TopicPartition]:
        """The input and ticks partitions this worker holds now."""
        return {
            (t.topic, t.partition) for t in self.app.consumer.assignment() if t.topic in self.source_names
        }

    async def deliver(self, record: RawRecord) -> None:
        """Process what ``record``, as Faust delivered it, means (see the module's steps)."""
        tp = (record.topic, record.partition)
        if not self.frontier.knows(tp):
            await self.start(tp)
        missing = self.frontier.missing(tp, record.offset)
        if missing is None:
            self.metrics.redelivered.inc()
            return  # processed already (Faust re-delivers around rebalances)
        if missing:
            await self.backfill(tp, missing)
        if record.topic == self.ticks_name and not record.key:
            await self.catch_up(record.partition)
        else:
            await self.process(record)
        self.frontier.advance(tp, record.offset + 1)

    async def process(self, record: RawRecord) -> None:
        """Hand ``record`` to the handler, timed."""
        with self.metrics.seconds.time():
            await self.handler.handle(record)

    async def start(self, tp: TopicPartition) -> None:
        """Start ``tp`` and every other held partition not started yet at the group's committed offset."""
        unknown = sorted((self.assigned_inputs() | {tp}) - set(self.frontier.next_offsets))
        self.frontier.start(await asyncio.to_thread(self.reader.committed, unknown))

    async def backfill(self, tp: TopicPartition, missing: range) -> None:
        """Read the records of ``missing`` that Faust did not deliver and process them, in order."""
        log.warning(
            "reading input records faust did not deliver",
            topic=tp[0],
            partition=tp[1],
            first=missing.start,
            last=missing.stop - 1,
        )
        start = missing.start
        while start < missing.stop:
            records, start = await asyncio.to_thread(self.reader.read, tp, start, missing.stop)
            for record in records:
                await self.process(record)
                self.frontier.advance(tp, record.offset + 1)
                self.metrics.backfilled.inc()
        self.frontier.advance(tp, missing.stop)

    async def catch_up(self, partition: int) -> None:
        """A nudge: process what the held partitions numbered ``partition`` hold beyond the frontier."""
        tps = sorted(tp for tp in self.assigned_inputs() if tp[1] == partition)
        if not tps:
            return
        if any(not self.frontier.knows(tp) for tp in tps):
            await self.start(tps[0])
        ends = await asyncio.to_thread(self.reader.ends, tps)
        for tp in tps:
            missing = self.frontier.missing(tp, ends[tp])
            if missing:
                await self.backfill(tp, missing)

    async def nudge_stalled(self) -> None:
        """Send a nudge for every partition number whose partitions stay behind their end (a timer)."""
        if self.app.rebalancing or self.app.in_recovery:
            return
        highwaters = {}
        for tp in self.assigned_inputs():
            end = self.app.consumer.highwater(faust_tp(tp))
            if end is not None:
                highwaters[tp] = end
        for partition in sorted({p for _, p in self.frontier.stalled(highwaters)}):
            log.warning("input partitions stalled behind their end; nudging", partition=partition)
            await self.ticks.send(key=b"", value=b"", partition=partition)
