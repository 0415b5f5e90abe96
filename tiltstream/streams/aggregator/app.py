"""The aggregator as a faust-streaming application: where its parts are made and connected.

One agent (concurrency 1) reads every input topic and the ticks topic; a RocksDB table keyed by
``tilt_series_id`` and co-partitioned with them holds a :class:`TableEntry` per series. The parts, in
the order a record meets them:

- :class:`~tiltstream.streams.aggregator.intake.Intake`: Faust's deliveries to every input record once
  and in order (the input offsets are the application's, not Faust's: Faust 0.15.3 loses records around a
  rebalance, see :mod:`~tiltstream.streams.aggregator.offsets`), with backfill and tail nudges;
- :class:`~tiltstream.streams.aggregator.handler.RecordHandler`: accept (reinjection rule, decode,
  validate, dead-letter), fold and decide, emit (commands through the entry's outbox, statuses);
- :class:`~tiltstream.streams.aggregator.checkpoint.Checkpoint`: on a timer and on revocation, write
  the entries changed since the last checkpoint to the table, flush the producer and commit the offsets
  processed (the commit order, and why a crash loses nothing, is in its module);
- :class:`~tiltstream.streams.aggregator.table.GraceTimer`: on a timer, on every worker, a tick to the
  ticks topic on the partition of each series whose grace period is over (table writes in Faust must
  happen inside stream iteration, so the agent decides when it reads the tick).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from tiltstream.streams.aggregator.checkpoint import Checkpoint
from tiltstream.streams.aggregator.cluster import OUTPUT_RECORDS, broker_credentials, broker_urls, ticks_topic
from tiltstream.streams.aggregator.fold import INPUT_TYPES
from tiltstream.streams.aggregator.handler import Outbox, RecordHandler, Senders
from tiltstream.streams.aggregator.intake import Intake, record_from_event
from tiltstream.streams.aggregator.metrics import AggregatorMetrics
from tiltstream.streams.aggregator.offsets import Frontier
from tiltstream.streams.aggregator.settings import AggregatorSettings
from tiltstream.streams.aggregator.table import GraceTimer, SeriesTable
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.runtime.decoding import MessageDecoder
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["TABLE_NAME", "create_app"]

#: Name of the Faust table (its changelog topic is ``<prefix>.<app_id>-series-changelog``).
TABLE_NAME = "series"

#: Keys and values as bytes, in and out: the serde and the table entries are the application's.
_RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def create_app(settings: AggregatorSettings, registry: CollectorRegistry | None = None) -> Any:
    """Build the aggregator's ``faust.App`` (call ``prepare_cluster(settings)`` before running it)."""
    app = _faust_app(settings)
    catalogue = Catalogue(settings.topics)
    rules = settings.rules()
    metrics = AggregatorMetrics(registry or CollectorRegistry())
    senders = _senders(app, settings, catalogue)
    # acks off: Faust never commits these topics; the checkpoint does (see offsets.py)
    source = app.topic(*senders.inputs, senders.ticks_name, acks=False, **_RAW)
    ticks = app.topic(senders.ticks_name, **_RAW)
    table = SeriesTable(_table(app, settings), rules, senders.ticks_name)
    handler = RecordHandler(
        senders,
        catalogue,
        MessageDecoder(schema_aware_serde(settings.kafka, catalogue), senders.dead_letters_name),
        table,
        Outbox(app, table, senders.outputs),
        rules,
        metrics,
    )
    frontier = Frontier()
    intake = Intake(app, settings.kafka, handler, frontier, metrics, ticks)
    checkpoint = Checkpoint(app, frontier, table, handler.send_statuses)
    grace = GraceTimer(app, table, ticks, settings.rescan_interval_seconds, settings.tick_interval_seconds)

    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            await intake.deliver(record_from_event(event))

    app.agent(source, concurrency=1)(aggregate)
    app.on_rebalance_complete.connect(grace.on_rebalance_complete)
    app.on_partitions_revoked.connect(checkpoint.on_partitions_revoked)
    app.timer(settings.commit_interval_seconds)(checkpoint.on_timer)
    app.timer(settings.stall_check_seconds)(intake.nudge_stalled)
    app.timer(settings.tick_interval_seconds)(grace.wake_expired)
    return app


def _faust_app(settings: AggregatorSettings) -> Any:
    import faust

    return faust.App(
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


def _senders(app: Any, settings: AggregatorSettings, catalogue: Catalogue) -> Senders:
    outputs = {
        catalogue.for_record(record).name: app.topic(catalogue.for_record(record).name, **_RAW)
        for record in OUTPUT_RECORDS
    }
    dead_letters = catalogue.dlq(settings.app_id)
    return Senders(
        inputs={catalogue.for_record(kind.__name__).name: kind for kind in INPUT_TYPES},
        ticks_name=ticks_topic(settings).name,
        outputs=outputs,
        status=outputs[catalogue.for_record("TiltSeriesStatus").name],
        dead_letters=app.topic(dead_letters.name, **_RAW),
        dead_letters_name=dead_letters.name,
        dead_letter_partitions=dead_letters.partitions,
        group=settings.app_id,
    )


def _table(app: Any, settings: AggregatorSettings) -> Any:
    return app.Table(
        TABLE_NAME,
        partitions=settings.topics.partitions,
        key_type=bytes,  # bytes in and out: the "raw" codec
        value_type=bytes,
        options={"driver": "rocksdict"},
    )
