"""The consumer-group loop every processing service runs.

One job at a time per instance (one GPU per pod); scale out with more instances in the group.

* The job runs on a worker thread while the main thread keeps calling ``poll``, so a job longer
  than ``max.poll.interval.ms`` does not cost group membership. Once one message waits behind the
  running job the assignment is paused; that message's input is prefetched meanwhile.
* Messages are handled strictly in the order polled: an undecodable one is dead-lettered (and its
  offset stored) only when its turn comes, so no offset is ever stored past an unfinished job.
* The outputs (or the terminal ``ProcessingFailed``) are produced and acknowledged before the
  input's offset is stored. Offsets of revoked partitions are never stored: the new owner redoes
  the job, emitting events with the same ids.
* :meth:`ProcessorService.stop` (SIGTERM) drains: nothing new starts, the running job may finish
  until ``drain_deadline_seconds`` (then it is abandoned, its offset not stored), stored offsets
  are committed and the consumer leaves the group.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from tiltstream.log import get_logger
from tiltstream.processors.runtime.attempts import JobOutcome, RetryPolicy, run_attempts
from tiltstream.processors.runtime.background import Background
from tiltstream.processors.runtime.defaults import with_defaults
from tiltstream.processors.runtime.failures import processing_failed
from tiltstream.processors.runtime.metrics import ProcessorMetrics
from tiltstream.processors.runtime.processor import Job, Processor
from tiltstream.processors.runtime.settings import ProcessorSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_consumer, create_producer
from tiltstream.streams.consumer import EventConsumer
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["ProcessorService"]

log = get_logger(__name__)

Partition = tuple[str, int]


@dataclass
class _Pending:
    """A polled message waiting for its turn (decoded and prefetched ahead of time)."""

    message: Message
    value: dict[str, Any] | None = None
    error: UndecodableEventError | None = None
    prefetch: Background[Any] | None = None

    @property
    def partition(self) -> Partition:
        return str(self.message.topic()), int(self.message.partition() or 0)


@dataclass
class _Running:
    pending: _Pending
    job: Job
    task: Background[JobOutcome]
    started: float = field(default_factory=time.monotonic)
    revoked: bool = False


class ProcessorService:
    """Run ``processor`` as a member of consumer group ``settings.group_id``.

    Parameters
    ----------
    processor
        The step to run on each input event.
    settings
        Kafka, topics, retries, drain deadline, consumer overrides.
    registry
        Where metrics go (a fresh registry when omitted).
    """

    def __init__(
        self,
        processor: Processor[Any],
        settings: ProcessorSettings,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.catalogue = Catalogue(settings.topics)
        self.input_topic = self.catalogue.for_record(processor.input_record).name
        self.registry = registry or CollectorRegistry()
        self.metrics = ProcessorMetrics(self.registry, processor.stage)
        self.policy = RetryPolicy(
            settings.max_attempts, settings.backoff_initial_seconds, settings.backoff_max_seconds
        )
        raw_producer = create_producer(settings.kafka)
        self.producer = EventProducer(raw_producer, self.catalogue)
        self.dead_letters = DeadLetterSink(raw_producer, self.catalogue, settings.group_id)
        self.serde = schema_aware_serde(settings.kafka, self.catalogue)
        self.consumer: Consumer = create_consumer(
            settings.kafka, settings.group_id, **settings.consumer_overrides
        )
        self.events = EventConsumer(self.consumer, self.catalogue, self.dead_letters, self.serde)
        self.assignment: set[Partition] = set()
        self.rebalances = 0
        self.backlog: deque[_Pending] = deque()
        self.running: _Running | None = None
        self._paused = False
        self._stored: dict[Partition, int] = {}
        self._stop = threading.Event()
        self._subscribed = False
        self._finished = False
        self._last_loop = time.monotonic()

    # -- probes -----------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Liveness: the poll loop turned recently."""
        return not self._finished and time.monotonic() - self._last_loop < self.settings.stalled_after_seconds

    def ready(self) -> bool:
        """Readiness: joined the group (a first rebalance happened) and not draining."""
        return self._subscribed and self.rebalances > 0 and not self._stop.is_set() and self.healthy()

    def stop(self) -> None:
        """Ask the loop to drain and return (safe from signal handlers and other threads)."""
        self._stop.set()

    # -- rebalance callbacks (run inside poll, on the main thread) --------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        self.assignment |= {(tp.topic, tp.partition) for tp in partitions}
        self._paused = False  # newly assigned partitions start unpaused; the loop pauses again
        log.info("partitions assigned", partitions=sorted(p for _, p in self.assignment))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget({(tp.topic, tp.partition) for tp in partitions}, commit=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget({(tp.topic, tp.partition) for tp in partitions}, commit=False)

    def _forget(self, gone: set[Partition], *, commit: bool) -> None:
        self.rebalances += 1
        if commit:
            done = [TopicPartition(t, p, self._stored[(t, p)]) for (t, p) in gone if (t, p) in self._stored]
            if done:
                try:
                    self.consumer.commit(offsets=done, asynchronous=False)
                except KafkaException as exc:
                    log.warning("commit on revoke failed", error=str(exc))
        self.assignment -= gone
        for partition in gone:
            self._stored.pop(partition, None)
        self.backlog = deque(p for p in self.backlog if p.partition not in gone)
        if self.running is not None and self.running.pending.partition in gone:
            self.running.revoked = True  # finish it, emit (same ids), but store no offset
        log.info("partitions revoked", partitions=sorted(p for _, p in gone), committed=commit)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`; then drain, commit and leave the group."""
        self.consumer.subscribe(
            [self.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._subscribed = True
        log.info("processor started", stage=self.processor.stage, topic=self.input_topic)
        deadline: float | None = None
        try:
            while True:
                self._last_loop = time.monotonic()
                if self._stop.is_set() and deadline is None:
                    deadline = time.monotonic() + self.settings.drain_deadline_seconds
                    self.backlog.clear()  # not started: redelivered to whoever owns them next
                    log.info("draining", running=self.running is not None)
                if self.running is not None and self.running.task.done():
                    self._finish(self.running)
                    self.running = None
                if deadline is not None:
                    if self.running is None:
                        break
                    if time.monotonic() > deadline:
                        self._abandon(self.running)
                        break
                elif self.running is None and self.backlog:
                    self._start_next()
                self._prefetch_next()
                self._pause_or_resume(draining=deadline is not None)
                self._accept(self.consumer.poll(self.settings.poll_timeout_seconds))
        finally:
            self._finished = True
            self.metrics.in_flight(0)
            self.producer.flush(30)
            try:
                self.events.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the consumer failed", error=str(exc))
            log.info("processor stopped", stage=self.processor.stage)

    def _accept(self, message: Message | None) -> None:
        if message is None:
            return
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            if error.fatal():
                raise KafkaException(error)
            log.warning("consumer error", error=str(error))
            return
        pending = _Pending(message)
        if pending.partition in self.assignment and not self._stop.is_set():
            self.backlog.append(pending)

    def _decode(self, pending: _Pending) -> None:
        if pending.value is not None or pending.error is not None:
            return
        topic, partition = pending.partition
        try:
            decoded = self.serde.decode(
                pending.message.value(),
                reader=self.processor.input_record,
                topic=topic,
                partition=partition,
                offset=int(pending.message.offset() or 0),
            )
            pending.value = decoded.value
        except UndecodableEventError as exc:
            pending.error = exc

    def _prefetch_next(self) -> None:
        if not self.settings.prefetch or self.running is None or not self.backlog:
            return
        head = self.backlog[0]
        self._decode(head)
        if head.value is not None and head.prefetch is None:
            value = head.value
            head.prefetch = Background(lambda: self.processor.load(value), name="prefetch")

    def _start_next(self) -> None:
        while self.backlog:
            pending = self.backlog.popleft()
            self._decode(pending)
            if pending.error is not None or pending.value is None:
                log.error("dead-lettering undecodable message", error=str(pending.error))
                self.dead_letters.send(pending.message, pending.error or UndecodableEventError("empty"))
                self.metrics.dead_lettered()
                self._store(pending)
                continue
            value = pending.value
            meta = value["metadata"]
            job = Job(
                value=value,
                topic=pending.partition[0],
                partition=pending.partition[1],
                offset=int(pending.message.offset() or 0),
                attempt=1,
            )
            bound = log.bind(tilt_series_id=meta["tilt_series_id"], movie_id=value.get("movie_id"))
            bound.info("job started", offset=job.offset, partition=job.partition)
            task = Background(
                functools.partial(self._execute, job, pending.prefetch), name=f"job-{self.processor.stage}"
            )
            self.running = _Running(pending, job, task)
            self.metrics.in_flight(1)
            return

    def _execute(self, job: Job, prefetch: Background[Any] | None) -> JobOutcome:
        return run_attempts(
            self.processor,
            job,
            self.policy,
            prefetched=prefetch,
            on_retry=lambda _e, _w: self.metrics.retried(),
        )

    def _finish(self, running: _Running) -> None:
        outcome = running.task.result()
        self.metrics.in_flight(0)
        value = outcome.job.value
        bound = log.bind(tilt_series_id=value["metadata"]["tilt_series_id"], movie_id=value.get("movie_id"))
        if outcome.cancelled:
            bound.warning("job cancelled, offset not stored")
            return
        outputs = outcome.outputs
        if outcome.error is not None and outcome.failure_kind is not None:
            outputs = [
                processing_failed(
                    outcome.job,
                    outcome.error,
                    outcome.failure_kind,
                    stage=self.processor.stage,
                    subject=self.processor.subject(value),
                    service=self.processor.stage,
                    instance=self.settings.instance,
                )
            ]
            self.metrics.failed(outcome.failure_kind.value, type(outcome.error).__name__, outcome.seconds)
            bound.error(
                "job failed",
                failure_kind=outcome.failure_kind.value,
                error_class=type(outcome.error).__name__,
                error=str(outcome.error),
                attempts=outcome.job.attempt,
            )
        else:
            self.metrics.processed(outcome.seconds)
            bound.info("job done", seconds=round(outcome.seconds, 3), outputs=len(outputs))
        self.producer.wait([self.producer.send(o.record, with_defaults(o.record, o.value)) for o in outputs])
        if running.revoked:
            bound.info("partition revoked during the job: offset left to its new owner")
            return
        self._store(running.pending)

    def _abandon(self, running: _Running) -> None:
        running.job.cancelled.set()
        log.warning("drain deadline passed: job abandoned, offset not stored", offset=running.job.offset)

    def _store(self, pending: _Pending) -> None:
        if pending.partition not in self.assignment:
            return
        try:
            self.consumer.store_offsets(pending.message)
            self._stored[pending.partition] = int(pending.message.offset() or 0) + 1
        except KafkaException as exc:  # e.g. revoked between the check and the call
            log.warning("offset not stored", error=str(exc))

    def _pause_or_resume(self, *, draining: bool) -> None:
        want = draining or (self.running is not None and len(self.backlog) >= 1)
        if want == self._paused or not self.assignment:
            return
        partitions = [TopicPartition(t, p) for t, p in sorted(self.assignment)]
        try:
            (self.consumer.pause if want else self.consumer.resume)(partitions)
            self._paused = want
        except KafkaException as exc:
            log.warning("pause/resume failed", error=str(exc))
