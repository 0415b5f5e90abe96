"""The ISPyB sink: a consumer group that writes every result into ISPyB, at least once and idempotently.

Events are gathered into batches (``batch_size`` events or ``linger_seconds``, whichever comes first) and
each batch is one database transaction. Offsets are stored only after the commit, so a crash at any point
re-reads what was not committed, and the idempotent writer makes the re-read harmless.

It consumes through the one consumer runtime (:class:`~tiltstream.streams.consumer.EventConsumer`):
reinjected copies meant for another group are skipped, undecodable and invalid messages dead-lettered.

When the database is unreachable (or fails in any way that is not the record's fault) the sink pauses
its partitions, keeps its group membership by polling, and retries the same batch with exponential backoff
until it succeeds: nothing is skipped and nothing advances. When a batch fails because of a record
(:class:`RecordRejectedError`, an integrity or data error), it is split in halves, each written in its own
transaction, and a refused half split again (:func:`~tiltstream.connectors.ispyb.halves.write_in_halves`):
every good event is committed once, and each event refused on its own goes to the group's dead-letter topic
with the reason (its offset stored once the broker has it). One bad event among ``n`` costs about
``2 log2 n`` more transactions, not ``n``. Offsets are stored only after all of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.errors import RecordRejectedError, constraint_refusal
from tiltstream.connectors.ispyb.halves import write_in_halves
from tiltstream.connectors.ispyb.records import SINK_RECORDS, sink_event
from tiltstream.connectors.ispyb.schema import check_schema
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.writer import IspybWriter
from tiltstream.log import get_logger
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import ConsumedEvent, EventConsumer, Partition
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.runtime.metrics import ConsumerMetrics
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["PERMANENT_ERRORS", "IspybSink", "create_engine"]

_log = get_logger(__name__)

#: Errors that are the record's fault: the same record would fail again on a healthy database.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    RecordRejectedError,
    sa.exc.IntegrityError,
    sa.exc.DataError,
    KeyError,
    TypeError,
    ValueError,
)


def create_engine(url: str) -> Engine:
    """A SQLAlchemy engine for the sink: liveness-checked pooled connections, SQLite with a busy timeout."""
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": 30})
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)


class IspybSink:
    """Writes events into ISPyB; :meth:`run` is the consumer-group service, :meth:`write` the core.

    Parameters
    ----------
    settings
        Database, batching, paths, Kafka.
    engine
        The database; made from ``settings.database_url`` when omitted.
    registry
        Where the metrics go (a new registry when omitted).
    """

    def __init__(
        self,
        settings: IspybSinkSettings,
        engine: Engine | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or create_engine(settings.database_url.get_secret_value())
        self.writer = IspybWriter(settings)
        self.catalogue = Catalogue(settings.topics)
        self.registry = registry or CollectorRegistry()
        self.events_written = Counter(
            "ispyb_sink_events", "Events written to ISPyB", ["record"], registry=self.registry
        )
        self.rows_written = Counter("ispyb_sink_rows", "Rows inserted or changed", registry=self.registry)
        self.consumer_metrics = ConsumerMetrics(self.registry, "ispyb_sink")
        self.dead_lettered = self.consumer_metrics.dead_letters
        self.retries = Counter(
            "ispyb_sink_retries", "Batches retried after a database failure", registry=self.registry
        )
        self.batch_seconds = Histogram(
            "ispyb_sink_batch_seconds", "Seconds per committed batch", registry=self.registry
        )
        self._pending: list[ConsumedEvent] = []

    # -- the core: events into one transaction ------------------------------------------------------

    def write(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Write ``(record, value)`` events in one transaction; return the rows inserted or changed.

        Each decoded ``value`` (the dict form) becomes its typed record here, the sink's one conversion
        (:func:`~tiltstream.connectors.ispyb.records.sink_event`); records the sink does not write are
        counted and skipped.

        Raises
        ------
        RecordRejectedError, sqlalchemy.exc.SQLAlchemyError
            Whatever stopped the transaction (it is rolled back, and the id cache with it); a CHECK
            constraint that MariaDB reports as an operational error is raised as a
            :class:`RecordRejectedError`.
        KeyError, TypeError
            When a value lacks a field of its record.
        """
        began = time.monotonic()
        rows = 0
        counts: dict[str, int] = {}
        try:
            typed = []
            for record, value in events:
                event = sink_event(record, value)
                if event is not None:
                    typed.append(event)
                counts[record] = counts.get(record, 0) + 1
            with Session(self.engine, autoflush=False, expire_on_commit=False) as session, session.begin():
                self.writer.prepare(session, typed)
                for event in typed:
                    rows += self.writer.apply(session, event)
                rows += self.writer.finish(session)
        except BaseException as error:
            self.writer.chain.rollback()
            refusal = constraint_refusal(error)
            if refusal is not None:
                raise refusal from error
            raise
        self.writer.chain.commit()
        self.batch_seconds.observe(time.monotonic() - began)
        self.rows_written.inc(rows)
        for record, count in counts.items():
            self.events_written.labels(record).inc(count)
        return rows

    def check(self) -> None:
        """Raise :class:`~tiltstream.connectors.ispyb.schema.SchemaMismatchError` naming what is missing."""
        check_schema(self.engine)

    # -- the service --------------------------------------------------------------------------------

    def topics(self) -> list[str]:
        """Full names of the topics the sink follows."""
        return [self.catalogue.for_record(record).name for record in SINK_RECORDS]

    def run(self, stop: threading.Event | None = None, *, until_caught_up: bool = False) -> None:
        """Consume and write until ``stop`` is set (or, with ``until_caught_up``, until nothing is left).

        Raises
        ------
        SchemaMismatchError
            At start, when the database lacks tables or columns (unless ``check_schema`` is off).
        """
        stop = stop or threading.Event()
        if self.settings.check_schema:
            self.check()
        events = self._events()
        events.subscribe(self.topics(), on_revoke=self._on_revoke, on_lost=self._on_revoke)
        _log.info(
            "ispyb sink started",
            group_id=self.settings.group_id,
            topics=len(self.topics()),
            url=self._safe_url(),
        )
        try:
            self._consume(events, stop, until_caught_up=until_caught_up)
        finally:
            events.close()
            events.dead_letters.producer.flush(30)
            _log.info("ispyb sink stopped", group_id=self.settings.group_id)

    def _events(self) -> EventConsumer:
        kafka, group = self.settings.kafka, self.settings.group_id
        return EventConsumer(
            create_consumer(kafka, group),
            self.catalogue,
            DeadLetterSink(create_producer(kafka), self.catalogue, group, admin=create_admin(kafka)),
            schema_aware_serde(kafka, self.catalogue),
            metrics=self.consumer_metrics,
            retry_initial_seconds=self.settings.retry_initial_seconds,
            retry_max_seconds=self.settings.retry_max_seconds,
        )

    def _consume(self, events: EventConsumer, stop: threading.Event, *, until_caught_up: bool) -> None:
        """Gather batches and write them until ``stop`` (or, with ``until_caught_up``, the end)."""
        first_at = 0.0
        linger = self.settings.linger_seconds
        while not stop.is_set():
            waited = time.monotonic() - first_at if self._pending else 0.0
            event = events.poll(max(0.0, min(0.5, linger - waited)) if self._pending else 0.5)
            if event is not None:
                if not self._pending:
                    first_at = time.monotonic()
                self._pending.append(event)
            full = len(self._pending) >= self.settings.batch_size
            due = self._pending and (event is None or time.monotonic() - first_at >= linger)
            if full or due:
                self._flush(events, stop)
            elif until_caught_up and event is None and not self._pending and self._caught_up(events):
                break

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _on_revoke(self, gone: set[Partition]) -> None:
        """Drop held events of partitions we no longer own (their offsets were not stored: they come back)."""
        self._pending = [e for e in self._pending if e.where not in gone]

    def _caught_up(self, events: EventConsumer) -> bool:
        """Whether every assigned partition has been read (and written or dead-lettered) up to its end."""
        if events.pending_dead_letters:
            return False
        consumer = events.consumer
        assignment = consumer.assignment()
        if not assignment:
            return False
        unread: list[TopicPartition] = []
        ends: dict[tuple[str, int], int] = {}
        for tp in consumer.position(assignment):
            low, high = consumer.get_watermark_offsets(tp, cached=True)  # kept fresh by the fetcher
            if low < 0 or high < 0:
                low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            if high > low and tp.offset < high:
                unread.append(tp)
                ends[(tp.topic, tp.partition)] = high
        if not unread:
            return True
        if any(tp.offset >= 0 for tp in unread):
            return False
        committed = consumer.committed(unread, timeout=10)  # positions not known yet: nothing fetched
        return all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in committed)

    def _flush(self, events: EventConsumer, stop: threading.Event) -> None:
        """Write the held batch (retrying outages), dead-letter what cannot be written, mark the rest done."""
        batch = list(self._pending)
        refused: set[int] = set()
        try:
            try:
                self._write_retrying(batch, events, stop)
            except PERMANENT_ERRORS as error:
                _log.warning("batch refused; writing it in halves", error=str(error), events=len(batch))
                self.writer.chain.reprobe()  # what the refusal was measured against may have changed
                refused = {id(e) for e in self._write_refused(batch, error, events, stop)}
        except _Stopped:
            return
        for event in batch:
            if id(event) not in refused:  # a refused one is done once the broker has its dead letter
                events.done(event)
        in_batch = {id(e) for e in batch}
        self._pending = [e for e in self._pending if id(e) not in in_batch]

    def _write_refused(
        self,
        batch: Sequence[ConsumedEvent],
        error: BaseException,
        events: EventConsumer,
        stop: threading.Event,
    ) -> list[ConsumedEvent]:
        """Write a refused ``batch`` in halves; return the events dead-lettered.

        A batch of one event is tried once more first: the refusal may have been measured against a
        schema the database no longer has (it was probed again since).
        """
        if len(batch) == 1:
            try:
                self._write_retrying(batch, events, stop)
                return []
            except PERMANENT_ERRORS as again:
                error = again
        return write_in_halves(
            batch,
            error,
            lambda half: self._write_retrying(half, events, stop),
            lambda event, why: self._dead_letter(event, why, events),
            PERMANENT_ERRORS,
        )

    def _write_retrying(
        self, batch: Sequence[ConsumedEvent], events: EventConsumer, stop: threading.Event
    ) -> int:
        """Write ``batch`` in one transaction, retrying outages; raise what the database refuses."""
        return self._retrying(lambda: self.write((e.record, e.event.value) for e in batch), events, stop)

    def _dead_letter(self, event: ConsumedEvent, error: BaseException, events: EventConsumer) -> None:
        """Send ``event``, refused on its own, to the group's dead-letter topic with ``error``."""
        value = event.event.value
        _log.error(
            "dead-lettering a record that cannot be written",
            record=event.record,
            tilt_series_id=value.get("metadata", {}).get("tilt_series_id"),
            error=str(error),
            dlq=events.dead_letters.topic.name,
        )
        events.dead_letter(event, error)

    def _retrying(self, attempt: Callable[[], int], events: EventConsumer, stop: threading.Event) -> int:
        """Run ``attempt`` until it succeeds or fails permanently; between tries, pause and keep polling."""
        delay = self.settings.retry_initial_seconds
        paused = False
        try:
            while True:
                try:
                    return attempt()
                except PERMANENT_ERRORS:
                    raise
                except (sa.exc.SQLAlchemyError, OSError) as error:
                    self.writer.chain.forget()
                    self.retries.inc()
                    _log.warning(
                        "database unavailable; retrying",
                        error=str(error).splitlines()[0],
                        delay_seconds=delay,
                    )
                    events.pause()
                    paused = True
                    deadline = time.monotonic() + delay
                    while time.monotonic() < deadline:
                        if stop.is_set():
                            raise _Stopped from error
                        held = events.poll(min(0.5, max(0.0, deadline - time.monotonic())))
                        if held is not None:  # fetched before the pause: keep it, in order, for later
                            self._pending.append(held)
                    delay = min(delay * 2, self.settings.retry_max_seconds)
        finally:
            if paused:
                events.resume()
                _log.info("database back; resumed")


class _Stopped(Exception):
    """Asked to stop while waiting for the database: leave the batch unwritten (it will be re-read)."""
