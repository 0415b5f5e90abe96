"""The aggregator as a faust-streaming application: thin wiring around the pure decision.

One agent (concurrency 1) reads every input topic and the ticks topic; a RocksDB table keyed by
``tilt_series_id`` and co-partitioned with them holds a :class:`TableEntry` per series. Per event:
decode (undecodable bytes go to the dead-letter topic), fold, decide, store, emit. Commands go
through the entry's outbox (see :mod:`~tiltstream.streams.aggregator.entry`); statuses are sent
without waiting. A timer, on every worker, wakes series whose grace period is over by sending a tick
to the ticks topic on the series' partition: table writes in Faust must happen inside stream iteration.

Input offsets are the application's, not Faust's (Faust 0.15.3 loses records around a rebalance; see
:mod:`~tiltstream.streams.aggregator.offsets`): the source topic has acks off, a
:class:`~tiltstream.streams.aggregator.offsets.Frontier` skips redeliveries, records Faust skipped are
read with a :class:`~tiltstream.streams.aggregator.backfill.PartitionReader` and processed first, a
partition stalled behind its end gets a nudge (an empty-key tick) so that the agent reads its tail, and
a timer commits the frontier after flushing the producer (and again when partitions are revoked).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from tiltstream.log import get_logger
from tiltstream.streams.aggregator.backfill import PartitionReader, RawRecord
from tiltstream.streams.aggregator.cluster import (
    broker_credentials,
    broker_urls,
    dead_letter_headers,
    ticks_topic,
)
from tiltstream.streams.aggregator.decide import decide, next_deadline_ms
from tiltstream.streams.aggregator.entry import TableEntry, decode_entry, encode_entry
from tiltstream.streams.aggregator.fold import INPUT_RECORDS, apply_event
from tiltstream.streams.aggregator.offsets import Frontier, TopicPartition
from tiltstream.streams.aggregator.settings import AggregatorSettings
from tiltstream.streams.aggregator.state import SeriesState
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["TABLE_NAME", "create_app"]

log = get_logger(__name__)

#: Name of the Faust table (its changelog topic is ``<prefix>.<app_id>-series-changelog``).
TABLE_NAME = "series"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "tiltstream_aggregator_events", "Input events handled, by record", ["record"], registry=registry
        )
        self.emitted = Counter(
            "tiltstream_aggregator_emitted", "Events emitted, by record", ["record"], registry=registry
        )
        self.dead_letters = Counter(
            "tiltstream_aggregator_dead_letters", "Undecodable input messages", registry=registry
        )
        self.redelivered = Counter(
            "tiltstream_aggregator_redelivered",
            "Input records Faust delivered again after they were processed (skipped)",
            registry=registry,
        )
        self.backfilled = Counter(
            "tiltstream_aggregator_backfilled",
            "Input records Faust skipped, read and processed by the aggregator itself",
            registry=registry,
        )
        self.seconds = Histogram(
            "tiltstream_aggregator_event_seconds", "Time to handle one input event", registry=registry
        )


def create_app(settings: AggregatorSettings, registry: CollectorRegistry | None = None) -> Any:
    """Build the aggregator's ``faust.App`` (call ``prepare_cluster(settings)`` before running it)."""
    import faust
    from faust.types import TP

    catalogue = Catalogue(settings.topics)
    rules = settings.rules()
    serde = schema_aware_serde(settings.kafka, catalogue)
    metrics = _Metrics(registry or CollectorRegistry())
    app = faust.App(
        # the consumer group, and the prefix of the changelog topic: per topic prefix, so two pipelines
        # on one cluster never share a table
        f"{settings.topics.prefix}.{settings.app_id}",
        broker=broker_urls(settings.kafka),
        broker_credentials=broker_credentials(settings.kafka),
        datadir=str(settings.datadir),
        store="rocksdb://",
        table_standby_replicas=settings.standby_replicas,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_seconds,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 4),
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        autodiscover=False,
        producer_acks=-1,
    )
    inputs = {catalogue.for_record(record).name: record for record in INPUT_RECORDS}
    ticks = ticks_topic(settings)
    raw_bytes: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic(*inputs, ticks.name, acks=False, **raw_bytes)
    source_names = {*inputs, ticks.name}
    frontier = Frontier()
    readers: list[PartitionReader] = []

    def reader() -> PartitionReader:
        if not readers:
            readers.append(PartitionReader(settings.kafka, app.conf.id))
        return readers[0]

    outputs = {
        record: app.topic(catalogue.for_record(record).name, **raw_bytes)
        for record in ("ReconstructionRequested", "TiltSeriesStatus", "ProcessingFailed")
    }
    dead_letters = app.topic(catalogue.dlq(settings.app_id).name, **raw_bytes)
    tick_sender = app.topic(ticks.name, **raw_bytes)
    table = app.Table(
        TABLE_NAME,
        partitions=settings.topics.partitions,
        key_type=bytes,  # bytes in and out: the "raw" codec
        value_type=bytes,
        options={"driver": "rocksdict"},
    )
    topic_by_name = {topic.get_topic_name(): topic for topic in outputs.values()}
    # tilt series -> (table partition, wall-clock ms when the timer must wake it)
    deadlines: dict[bytes, tuple[int, int]] = {}
    scan = {"due_ms": 0}

    def store(key: bytes, entry: TableEntry) -> None:
        table[key] = encode_entry(entry)
        deadline = 0 if entry.outbox else next_deadline_ms(entry.state, rules)
        if deadline is None:
            deadlines.pop(key, None)
        else:
            deadlines[key] = (entry.partition, deadline)

    async def send_outbox(key: bytes, entry: TableEntry) -> TableEntry:
        # the entry with its outbox must be in the changelog before anything in it is sent
        await app.producer.flush()
        for name, payload in entry.outbox:
            await (await topic_by_name[name].send(key=key, value=payload))
        done = TableEntry(entry.state, entry.partition)
        store(key, done)
        return done

    async def handle(message: RawRecord) -> None:
        key: bytes = message.key or b""
        record: str | None = None
        value: dict[str, Any] | None = None
        if message.topic != ticks.name:
            try:
                decoded = serde.decode(
                    message.value or b"",
                    reader=inputs[message.topic],
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                )
            except UndecodableEventError as exc:
                log.warning("dead-lettering an undecodable event", error=str(exc))
                headers = dead_letter_headers(
                    message.topic,
                    message.partition,
                    message.offset,
                    exc,
                    settings.app_id,
                    list(message.headers),
                )
                await (await dead_letters.send(key=message.key, value=message.value, headers=headers))
                metrics.dead_letters.inc()
                return
            record, value = inputs[message.topic], decoded.value
            key = value["metadata"]["tilt_series_id"].encode()
        raw = table.get(key)
        if raw is None and record is None:
            return  # a tick for a series this table does not hold
        entry = decode_entry(raw) if raw else TableEntry(SeriesState(key.decode()), message.partition)
        if entry.outbox:
            entry = await send_outbox(key, entry)
        now = _now_ms()
        state = apply_event(entry.state, record, value, now) if record and value else entry.state
        decision = decide(state, now, rules)
        for command in decision.commands:
            log.info(
                "decided",
                tilt_series_id=key.decode(),
                record=command.record,
                request_id=command.value.get("request_id"),
                reason=command.value.get("reason"),
            )
        outbox = tuple(
            (catalogue.for_record(c.record).name, serde.encode(c.record, c.value)) for c in decision.commands
        )
        if outbox:
            await send_outbox(key, TableEntry(decision.state, message.partition, outbox))
            for command in decision.commands:
                metrics.emitted.labels(command.record).inc()
        elif decision.state != entry.state or raw is None:
            store(key, TableEntry(decision.state, message.partition))
        if decision.status is not None:
            await outputs["TiltSeriesStatus"].send(
                key=key, value=serde.encode("TiltSeriesStatus", decision.status)
            )
            metrics.emitted.labels("TiltSeriesStatus").inc()
        metrics.events.labels(record or "tick").inc()

    async def start_partitions(tp: TopicPartition) -> None:
        # where this instance starts every input partition it holds: the group's committed offset
        unknown = sorted((assigned_inputs() | {tp}) - set(frontier.next_offsets))
        frontier.start(await asyncio.to_thread(reader().committed, unknown))

    async def backfill(tp: TopicPartition, missing: range) -> None:
        log.warning(
            "reading input records faust did not deliver",
            topic=tp[0],
            partition=tp[1],
            first=missing.start,
            last=missing.stop - 1,
        )
        start = missing.start
        while start < missing.stop:
            records, start = await asyncio.to_thread(reader().read, tp, start, missing.stop)
            for record in records:
                with metrics.seconds.time():
                    await handle(record)
                frontier.advance(tp, record.offset + 1)
                metrics.backfilled.inc()
        frontier.advance(tp, missing.stop)

    def assigned_inputs() -> set[TopicPartition]:
        return {(t.topic, t.partition) for t in app.consumer.assignment() if t.topic in source_names}

    async def catch_up(partition: int) -> None:
        # a nudge from watch_tails(): read what the input partitions hold beyond the frontier
        tps = sorted(tp for tp in assigned_inputs() if tp[1] == partition)
        if not tps:
            return
        if any(not frontier.knows(tp) for tp in tps):
            await start_partitions(tps[0])
        ends = await asyncio.to_thread(reader().ends, tps)
        for tp in tps:
            missing = frontier.missing(tp, ends[tp])
            if missing:
                await backfill(tp, missing)

    # acks off: Faust never commits these topics; commit_frontier() does (see offsets.py)
    @app.agent(source, concurrency=1)
    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            tp = (message.topic, message.partition)
            if not frontier.knows(tp):
                await start_partitions(tp)
            missing = frontier.missing(tp, message.offset)
            if missing is None:
                metrics.redelivered.inc()
                continue  # processed already (Faust re-delivers around rebalances)
            if missing:
                await backfill(tp, missing)
            if message.topic == ticks.name and not message.key:
                await catch_up(message.partition)
                frontier.advance(tp, message.offset + 1)
                continue
            with metrics.seconds.time():
                await handle(
                    RawRecord(
                        message.topic,
                        message.partition,
                        message.offset,
                        message.key,
                        event.value,
                        tuple((str(k), bytes(v or b"")) for k, v in (message.headers or [])),
                    )
                )
            frontier.advance(tp, message.offset + 1)

    async def commit_frontier(during_rebalance: bool = False) -> None:
        if app.rebalancing and not during_rebalance:
            return
        assigned = {(t.topic, t.partition) for t in app.consumer.assignment()}
        offsets = frontier.to_commit(assigned)
        if not offsets:
            return
        # what processing those records produced (table changelog, statuses, commands) first
        await app.producer.flush()
        # Consumer._commit: the driver's commit of exactly these offsets (Consumer.commit would commit
        # Faust's own acknowledgement bookkeeping instead, which these topics do not use)
        consumer: Any = app.consumer
        if await consumer._commit({TP(t, p): offset for (t, p), offset in offsets.items()}):
            frontier.mark_committed(offsets)

    async def watch_tails() -> None:
        if app.rebalancing or app.in_recovery:
            return
        consumer: Any = app.consumer
        highwaters = {}
        for topic, partition in assigned_inputs():
            end = consumer.highwater(TP(topic, partition))
            if end is not None:
                highwaters[(topic, partition)] = end
        for partition in sorted({p for _, p in frontier.stalled(highwaters)}):
            log.warning("input partitions stalled behind their end; nudging", partition=partition)
            await tick_sender.send(key=b"", value=b"", partition=partition)

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Faust waited for the agent to finish its event and the generation is still valid: commit,
        # then start every partition again from the committed offsets (another instance may get some)
        await commit_frontier(during_rebalance=True)
        frontier.forget()

    async def rescan(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        scan["due_ms"] = 0  # partitions moved and recovery finished: look at every series again

    async def wake_expired() -> None:
        if app.rebalancing or app.in_recovery:
            return
        now = _now_ms()
        if now >= scan["due_ms"]:
            deadlines.clear()
            for key, raw in list(table.items()):
                entry = decode_entry(raw)
                deadline = 0 if entry.outbox else next_deadline_ms(entry.state, rules)
                if deadline is not None:
                    deadlines[key] = (entry.partition, deadline)
            scan["due_ms"] = now + round(settings.rescan_interval_seconds * 1000)
        for key, (partition, deadline) in list(deadlines.items()):
            if deadline <= now:
                await tick_sender.send(key=key, value=b"", partition=partition)
                # the tick will settle it; look again only after another interval
                deadlines[key] = (partition, now + round(settings.tick_interval_seconds * 5000))

    app.on_rebalance_complete.connect(rescan)
    app.on_partitions_revoked.connect(on_revoked)
    app.timer(settings.commit_interval_seconds)(commit_frontier)
    app.timer(settings.stall_check_seconds)(watch_tails)
    app.timer(settings.tick_interval_seconds)(wake_expired)
    return app
