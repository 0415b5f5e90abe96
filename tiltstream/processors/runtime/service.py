"""The consumer-group loop every processing service runs, on the one consumer runtime.

One job at a time per instance (one GPU per pod); scale out with more instances in the group. Polling,
the reinjection rule, decoding, validation, dead letters and offset bookkeeping are the runtime's
(:class:`~tiltstream.streams.consumer.EventConsumer`); the job, its prefetch and its retries are here.

* The job runs on a worker thread while the main thread keeps calling ``poll``, so a job longer
  than ``max.poll.interval.ms`` does not cost group membership. Once one message waits behind the
  running job the assignment is paused; that message's input is prefetched meanwhile.
* Jobs run strictly in the order polled. An undecodable or invalid message is dead-lettered when
  polled, but its offset, like every offset, is stored only once every earlier message of its
  partition is done, so no offset is ever stored past an unfinished job (nor past a dead letter the
  broker has not acknowledged).
* The outputs (or the terminal ``ProcessingFailed``) are produced and acknowledged before the
  input's offset is stored. Offsets of revoked partitions are never stored: the new owner redoes
  the job, emitting events with the same ids.
* :meth:`ProcessorService.stop` (SIGTERM) drains: nothing new starts, the running job may finish
  until ``drain_deadline_seconds`` (then it is abandoned, its offset not stored), stored offsets
  are committed and the consumer leaves the group.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
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
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import ConsumedEvent, EventConsumer, Partition
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.runtime.metrics import ConsumerMetrics
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["ProcessorService"]

log = get_logger(__name__)


@dataclass
class _Pending:
    """A polled event waiting for its turn (its input prefetched ahead of time)."""

    event: ConsumedEvent
    prefetch: Background[Any] | None = None

    @property
    def partition(self) -> Partition:
        return self.event.where


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
        self.dead_letters = DeadLetterSink(
            raw_producer, self.catalogue, settings.group_id, admin=create_admin(settings.kafka)
        )
        self.serde = schema_aware_serde(settings.kafka, self.catalogue)
        self.events = EventConsumer(
            create_consumer(settings.kafka, settings.group_id, **settings.consumer_overrides),
            self.catalogue,
            self.dead_letters,
            self.serde,
            metrics=ConsumerMetrics(self.registry, "tiltstream_processor", {"stage": processor.stage}),
            retry_initial_seconds=settings.backoff_initial_seconds,
            retry_max_seconds=settings.backoff_max_seconds,
        )
        self.backlog: deque[_Pending] = deque()
        self.running: _Running | None = None
        self._subscribed = False
        self._finished = False
        self._last_loop = time.monotonic()

    @property
    def assignment(self) -> set[Partition]:
        """The partitions this instance owns now."""
        return set(self.events.assignment)

    @property
    def rebalances(self) -> int:
        """Assignments, revocations and losses seen so far."""
        return self.events.rebalances

    # -- probes -----------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Liveness: the poll loop turned recently."""
        return not self._finished and time.monotonic() - self._last_loop < self.settings.stalled_after_seconds

    def ready(self) -> bool:
        """Readiness: joined the group (a first rebalance happened) and not draining."""
        return self._subscribed and self.rebalances > 0 and not self.events.stopping and self.healthy()

    def stop(self) -> None:
        """Ask the loop to drain and return (safe from signal handlers and other threads)."""
        self.events.stop()

    # -- rebalances (inside poll, on the main thread, after the runtime's bookkeeping) ------------

    def _forget(self, gone: set[Partition]) -> None:
        self.backlog = deque(p for p in self.backlog if p.partition not in gone)
        if self.running is not None and self.running.pending.partition in gone:
            self.running.revoked = True  # finish it, emit (same ids), but store no offset

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`; then drain, commit and leave the group."""
        self.events.subscribe([self.input_topic], on_revoke=self._forget, on_lost=self._forget)
        self._subscribed = True
        log.info("processor started", stage=self.processor.stage, topic=self.input_topic)
        deadline: float | None = None
        try:
            while True:
                self._last_loop = time.monotonic()
                if self.events.stopping and deadline is None:
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
                self._pause_or_resume()
                self._accept(self.events.poll(self.settings.poll_timeout_seconds))
        finally:
            self._finished = True
            self.metrics.in_flight(0)
            self.producer.flush(30)
            try:
                self.events.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the consumer failed", error=str(exc))
            log.info("processor stopped", stage=self.processor.stage)

    def _accept(self, event: ConsumedEvent | None) -> None:
        if event is not None and not self.events.stopping:
            self.backlog.append(_Pending(event))

    def _prefetch_next(self) -> None:
        if not self.settings.prefetch or self.running is None or not self.backlog:
            return
        head = self.backlog[0]
        if head.prefetch is None:
            value = head.event.event.value
            head.prefetch = Background(lambda: self.processor.load(value), name="prefetch")

    def _start_next(self) -> None:
        pending = self.backlog.popleft()
        value = pending.event.event.value
        job = Job(
            value=value,
            topic=pending.event.topic,
            partition=pending.event.partition,
            offset=pending.event.offset,
            attempt=1,
        )
        bound = log.bind(tilt_series_id=value["metadata"]["tilt_series_id"], movie_id=value.get("movie_id"))
        bound.info("job started", offset=job.offset, partition=job.partition)
        task = Background(
            functools.partial(self._execute, job, pending.prefetch), name=f"job-{self.processor.stage}"
        )
        self.running = _Running(pending, job, task)
        self.metrics.in_flight(1)

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
        self.events.done(running.pending.event)

    def _abandon(self, running: _Running) -> None:
        running.job.cancelled.set()
        log.warning("drain deadline passed: job abandoned, offset not stored", offset=running.job.offset)

    def _pause_or_resume(self) -> None:
        """Pause while a message waits behind the running job (the runtime pauses all when draining)."""
        if self.running is not None and self.backlog:
            self.events.pause()
        else:
            self.events.resume()
