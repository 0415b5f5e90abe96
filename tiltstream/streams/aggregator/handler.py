"""One input record through the aggregator: accept it, fold it into its series, decide, emit.

:meth:`RecordHandler.handle` is the whole path of a record, in three steps a reader can follow:

1. :meth:`~RecordHandler.accept`: the consumption rules every tiltstream service applies where Faust
   leaves the choice to us, through the one decode path every consumer uses
   (:class:`~tiltstream.streams.runtime.decoding.MessageDecoder`): a message reinjected from another
   group's dead-letter topic is skipped, the bytes are decoded into the reader's schema and the values
   checked; what fails either goes to
   ``<prefix>.dlq.<app_id>`` with the usual error headers and the worker moves on.
2. :meth:`~RecordHandler.settle`: the series' entry is read from the table (its outbox, left by a crash,
   sent first), the event folded into its state and the state decided on.
3. :meth:`~RecordHandler.emit`: commands go through the entry's outbox (:class:`Outbox`, written to
   the table at once); otherwise a changed state is kept in the worker's decoded copy and written to
   the table by the next checkpoint; the status is sent without waiting when the series' state
   changed, else kept for the next checkpoint (:meth:`~RecordHandler.status`); the checkpoint
   flushes them before it commits the input offsets.

A tick (from the ticks topic) skips step 1: it carries no event, only the series to decide again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiltstream.log import get_logger
from tiltstream.streams.aggregator.backfill import RawRecord
from tiltstream.streams.aggregator.decide import Decision, decide
from tiltstream.streams.aggregator.entry import TableEntry
from tiltstream.streams.aggregator.fold import InputRecord, apply_event
from tiltstream.streams.aggregator.metrics import AggregatorMetrics
from tiltstream.streams.aggregator.outputs import series_state_name
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import SeriesState
from tiltstream.streams.aggregator.table import SeriesTable, now_ms
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.dlq import dead_letter_headers_from
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.events import ProcessingFailed
from tiltstream.streams.runtime.decoding import MessageDecoder

__all__ = ["InputEvent", "Outbox", "RecordHandler", "Senders"]

log = get_logger(__name__)


@dataclass(frozen=True)
class InputEvent:
    """An accepted input: its record (short name), decoded and checked value, and series key."""

    record: str
    value: InputRecord
    key: bytes


@dataclass(frozen=True)
class Senders:
    """The Faust topics the aggregator reads from and writes to, by what they are for.

    ``inputs`` maps each input topic's name to the record class it carries; ``outputs`` maps each
    output topic's name to a Faust topic sending raw bytes to it.
    """

    inputs: Mapping[str, type[InputRecord]]
    ticks_name: str
    outputs: Mapping[str, Any]
    status: Any
    dead_letters: Any
    dead_letters_name: str
    dead_letter_partitions: int
    group: str


class Outbox:
    """Commands made durable in the series' table entry before they are sent (see ``entry.py``)."""

    def __init__(self, app: Any, table: SeriesTable, outputs: Mapping[str, Any]) -> None:
        self.app = app
        self.table = table
        self.outputs = outputs

    async def send(self, key: bytes, entry: TableEntry) -> TableEntry:
        """Send the outbox of ``entry`` (already put in the table), then store the entry without it.

        The producer is flushed first, so the changelog has the entry with its outbox before anything
        in it goes out; each command is acknowledged before the outbox is cleared.
        """
        await self.app.producer.flush()
        for name, payload in entry.outbox:
            await (await self.outputs[name].send(key=key, value=payload))
        done = TableEntry(entry.state, entry.partition)
        self.table.put(key, done)
        return done


class RecordHandler:
    """Turns each input record or tick into the series' next state, its commands and status."""

    def __init__(
        self,
        senders: Senders,
        catalogue: Catalogue,
        decoder: MessageDecoder,
        table: SeriesTable,
        outbox: Outbox,
        rules: Rules,
        metrics: AggregatorMetrics,
    ) -> None:
        self.senders = senders
        self.catalogue = catalogue
        self.decoder = decoder
        self.table = table
        self.outbox = outbox
        self.rules = rules
        self.metrics = metrics
        #: the decision with the newest status of each series not sent yet (see :meth:`status`)
        self.pending_statuses: dict[bytes, Decision] = {}

    async def handle(self, record: RawRecord) -> None:
        """Skip, dead-letter or fold ``record`` into its series, then decide and emit."""
        if record.topic == self.senders.ticks_name:
            await self.settle(record.key or b"", record.partition, None)
            return
        event = await self.accept(record)
        if event is not None:
            await self.settle(event.key, record.partition, event)

    async def accept(self, record: RawRecord) -> InputEvent | None:
        """The event ``record`` holds, or None when it is not for this group or was dead-lettered."""
        if not self.decoder.wanted_headers(record.headers):
            log.info(
                "skipping a message reinjected for another group",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            self.metrics.skipped_reinjections.inc()
            return None
        reader = self.senders.inputs[record.topic]
        try:
            event = self.decoder.decode_typed_bytes(
                record.value, reader, topic=record.topic, partition=record.partition, offset=record.offset
            )
        except UndecodableEventError as exc:  # InvalidEventError (a subclass) too
            await self.dead_letter(record, exc)
            return None
        return InputEvent(reader.__name__, event, event.metadata.tilt_series_id.encode())

    async def dead_letter(self, record: RawRecord, error: UndecodableEventError) -> None:
        """Send ``record``'s bytes to the dead-letter topic and wait until the broker has them."""
        log.warning(
            "dead-lettering an undecodable or invalid event",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=str(error),
        )
        senders = self.senders
        headers = dead_letter_headers_from(
            record.topic, record.partition, record.offset, record.headers, error, senders.group
        )
        partition = record.partition if record.partition < senders.dead_letter_partitions else None
        sent = await senders.dead_letters.send(
            key=record.key, value=record.value, headers=headers, partition=partition
        )
        await sent
        self.metrics.dead_letters.inc()

    async def settle(self, key: bytes, partition: int, event: InputEvent | None) -> None:
        """Fold ``event`` (None for a tick) into series ``key``, decide, and emit what was decided."""
        stored = self.table.get(key)
        if stored is None and event is None:
            return  # a tick for a series this table does not hold
        entry = stored or TableEntry(SeriesState(key.decode()), partition)
        if entry.outbox:
            entry = await self.outbox.send(key, entry)  # left by a crash: the same bytes again
        now = now_ms()
        state = apply_event(entry.state, event.value, now) if event else entry.state
        decision = decide(state, now, self.rules, self.table.selection(key), _movie_of(event))
        await self.emit(key, partition, decision, changed=stored is None or decision.state is not entry.state)
        if decision.status_counts is not None:
            before = series_state_name(entry.state)[0] if stored is not None else None
            await self.status(key, decision, before)
        self.metrics.events.labels(event.record if event else "tick").inc()

    async def status(self, key: bytes, decision: Decision, before: str | None) -> None:
        """Send the status now for a new series, a change of its state or a command; else keep it.

        A status that only counts one more tilt processed replaces the one kept before it, and the
        checkpoint sends what is kept (:meth:`send_statuses`) before it flushes the producer, so the
        status topic has every change of state at once and the counts once per commit interval.
        """
        if decision.commands or series_state_name(decision.state)[0] != before:
            self.pending_statuses.pop(key, None)  # older than this one
            await self._send_status(key, decision)
        else:
            self.pending_statuses[key] = decision  # its value is built if it is still the newest

    async def send_statuses(self) -> int:
        """Send every status kept since the last checkpoint (the checkpoint's first step)."""
        pending, self.pending_statuses = self.pending_statuses, {}
        for key, decision in pending.items():
            await self._send_status(key, decision)
        return len(pending)

    async def _send_status(self, key: bytes, decision: Decision) -> None:
        value = decision.status
        assert value is not None
        encoded = self.decoder.serde.encode("TiltSeriesStatus", value)
        await self.senders.status.send(key=key, value=encoded)
        self.metrics.emitted.labels("TiltSeriesStatus").inc()

    async def emit(self, key: bytes, partition: int, decision: Decision, *, changed: bool) -> None:
        """Send ``decision``'s commands through the outbox and store its state."""
        outbox = tuple(
            (self.catalogue.for_record(c.record).name, self.decoder.serde.encode(c.record, c.value))
            for c in decision.commands
        )
        for command in decision.commands:
            log.info(
                "decided",
                tilt_series_id=key.decode(),
                record=command.record,
                request_id=command.value.get("request_id"),
                reason=command.value.get("reason"),
            )
        if outbox:
            entry = TableEntry(decision.state, partition, outbox)
            self.table.put(key, entry)  # first: from here on a crash sends these same bytes again
            await self.outbox.send(key, entry)
            for command in decision.commands:
                self.metrics.emitted.labels(command.record).inc()
        elif changed:
            self.table.put(key, TableEntry(decision.state, partition))


def _movie_of(event: InputEvent | None) -> str | None:
    """The movie ``event`` concerns, for the series' tilt selection (None: a series-wide event)."""
    if event is None:
        return None
    value = event.value
    if isinstance(value, ProcessingFailed):
        return value.movie_id or value.subject_id
    movie_id = getattr(value, "movie_id", None)
    return movie_id if isinstance(movie_id, str) else None
