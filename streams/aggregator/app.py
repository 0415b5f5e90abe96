"""The aggregator as a faust-streaming application: thin wiring around the pure decision.

One agent (concurrency 1) reads every input topic and the ticks topic; a RocksDB table keyed by
``tilt_series_id`` and co-partitioned with them holds a :class:`TableEntry` per series. Per event:
decode (undecodable bytes go to the dead-letter topic), fold, decide, store, emit. Commands go
through the entry's outbox (see :mod:`~tiltstream.streams.aggregator.entry`); statuses are sent
without waiting, and Faust flushes its producer before it commits input offsets, so both are at
least once. A timer, on every worker, wakes series whose grace period is over by sending a tick to
the ticks topic on the series' partition: table writes in Faust must happen inside stream iteration.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from tiltstream.log import get_logger
from tiltstream.streams.aggregator.cluster import (
    broker_credentials,
    broker_urls,
    dead_letter_headers,
    ticks_topic,
)
from tiltstream.streams.aggregator.decide import decide, next_deadline_ms
from tiltstream.streams.aggregator.entry import TableEntry, decode_entry, encode_entry
from tiltstream.streams.aggregator.fold import INPUT_RECORDS, apply_event
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
        self.seconds = Histogram(
            "tiltstream_aggregator_event_seconds", "Time to handle one input event", registry=registry
        )


def create_app(settings: AggregatorSettings, registry: CollectorRegistry | None = None) -> Any:
    """Build the aggregator's ``faust.App`` (call ``prepare_cluster(settings)`` before running it)."""
    import faust

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
    source = app.topic(*inputs, ticks.name, **raw_bytes)
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

    async def handle(event: Any) -> None:
        message = event.message
        key: bytes = message.key or b""
        record: str | None = None
        value: dict[str, Any] | None = None
        if message.topic != ticks.name:
            try:
                decoded = serde.decode(
                    event.value,
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
                    list(message.headers or []),
                )
                await (await dead_letters.send(key=message.key, value=event.value, headers=headers))
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

    @app.agent(source, concurrency=1)
    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            with metrics.seconds.time():
                await handle(event)

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
    app.timer(settings.tick_interval_seconds)(wake_expired)
    return app
