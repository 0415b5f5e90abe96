"""The one consumer runtime every group member uses: the processors and the ISPyB sink.

:class:`EventConsumer` polls, skips messages reinjected for another group (the reinjection rule),
decodes into the reader's schema and validates, dead-letters what cannot be decoded or is invalid and
moves on, and stores an offset only when the caller acknowledges the message (:meth:`~EventConsumer.done`
after its outputs were acknowledged or its rows committed), never past an earlier message that is not
done. Around long jobs the caller pauses the assignment (:meth:`~EventConsumer.pause`) and keeps
polling, so it stays in the group. :meth:`~EventConsumer.stop` (SIGTERM) drains: nothing new is handed
out, the caller finishes what it holds and calls :meth:`~EventConsumer.close`.

A dead letter the broker does not acknowledge (its topic missing and not creatable, the broker away)
is retried with backoff while its partition is paused; its offset is stored only once it is in the
dead-letter topic, so a poison message is neither lost nor able to stop the consumer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tiltstream.log import get_logger
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.dlq import DeadLetterError, DeadLetterSink
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.runtime.decoding import ConsumedEvent, MessageDecoder, Partition, position
from tiltstream.streams.runtime.letters import Letter, PendingLetters
from tiltstream.streams.runtime.metrics import ConsumerMetrics
from tiltstream.streams.runtime.offsets import OffsetTracker
from tiltstream.streams.serde import AvroSerde

__all__ = ["ConsumedEvent", "EventConsumer", "Partition", "RebalanceCallback"]

log = get_logger(__name__)

#: Called with the partitions assigned, revoked or lost, after the runtime's own bookkeeping.
RebalanceCallback = Callable[[set[Partition]], None]


class EventConsumer:
    """A consumer-group member that hands out decoded, valid events and dead-letters the rest.

    Parameters
    ----------
    consumer
        From :func:`~tiltstream.streams.clients.create_consumer` (auto offset store disabled).
    catalogue
        Tells which record each topic carries (the reader schema).
    dead_letters
        Where undecodable, invalid and refused messages go.
    serde
        Decoder; the package's schemas by default.
    metrics
        Dead letters, skipped reinjections, dead-letter retries (a private registry when omitted).
    retry_initial_seconds, retry_max_seconds
        Backoff between tries of a dead letter the broker did not acknowledge.
    """

    def __init__(
        self,
        consumer: Consumer,
        catalogue: Catalogue,
        dead_letters: DeadLetterSink,
        serde: AvroSerde | None = None,
        *,
        metrics: ConsumerMetrics | None = None,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> None:
        self.consumer = consumer
        self.catalogue = catalogue
        self.dead_letters = dead_letters
        self.serde = serde or AvroSerde()
        self.decoder = MessageDecoder(self.serde, dlq_topic=dead_letters.topic.name)
        self.metrics = metrics or ConsumerMetrics()
        self.offsets = OffsetTracker()
        self.letters = PendingLetters(retry_initial_seconds, retry_max_seconds)
        self.rebalances = 0
        self.dead_lettered = 0
        self._readers: dict[str, str | None] = {}
        self._pause_all = False
        self._paused: set[Partition] = set()
        self._stop = threading.Event()
        self._callbacks: dict[str, RebalanceCallback | None] = {}

    # -- membership ----------------------------------------------------------------------------------

    @property
    def assignment(self) -> frozenset[Partition]:
        """The partitions this member owns now."""
        return self.offsets.partitions

    def subscribe(
        self,
        topics: Iterable[str],
        *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        """Join the group on ``topics`` (full names); the callbacks run inside :meth:`poll`."""
        self._callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}
        self.consumer.subscribe(
            list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        assigned = {(tp.topic, tp.partition) for tp in partitions}
        self.offsets.assigned(assigned)
        log.info("partitions assigned", partitions=sorted(p for _, p in self.assignment))
        self._callback("assign", assigned)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._let_go({(tp.topic, tp.partition) for tp in partitions}, commit=True)
        self._callback("revoke", {(tp.topic, tp.partition) for tp in partitions})

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._let_go({(tp.topic, tp.partition) for tp in partitions}, commit=False)
        self._callback("lost", {(tp.topic, tp.partition) for tp in partitions})

    def _callback(self, name: str, partitions: set[Partition]) -> None:
        callback = self._callbacks.get(name)
        if callback is not None:
            callback(partitions)

    def _let_go(self, gone: set[Partition], *, commit: bool) -> None:
        """Forget ``gone``: commit what was stored for them first (a revocation, not a loss)."""
        self.rebalances += 1
        stored = self.offsets.revoked(gone)
        if commit and stored:
            done = [TopicPartition(t, p, offset) for (t, p), offset in stored.items()]
            try:
                self.consumer.commit(offsets=done, asynchronous=False)
            except KafkaException as exc:
                log.warning("commit on revoke failed", error=str(exc))
        self.letters.forget(gone)
        self._paused -= gone
        log.info("partitions revoked", partitions=sorted(p for _, p in gone), committed=commit)

    # -- reading -------------------------------------------------------------------------------------

    def poll(self, timeout: float = 1.0) -> ConsumedEvent | None:
        """The next decodable, valid event for this group, or None (nothing within ``timeout`` seconds).

        Before polling, dead letters whose wait is over are tried again and the pauses are brought up
        to date. A message reinjected for another group is skipped (done at once); an undecodable or
        invalid one is dead-lettered (done once the broker has it). While stopping, nothing is handed
        out: what arrives is left to the next owner.

        Raises
        ------
        confluent_kafka.KafkaException
            For a fatal client error.
        """
        if not self.stopping:
            self._retry_letters()
        self._sync_pauses()
        message = self.consumer.poll(timeout)
        if message is None or not self._usable(message) or self.stopping:
            return None
        topic, partition, offset = position(message)
        epoch = self.offsets.track((topic, partition), offset)
        if epoch is None:  # not (or no longer) ours
            return None
        if not self.decoder.wanted(message):
            log.info("skipping a message reinjected for another group", topic=topic, offset=offset)
            self.metrics.skipped_reinjected()
            self._ack((topic, partition), offset, epoch)
            return None
        try:
            return self.decoder.consumed(message, self._reader(topic), epoch)
        except UndecodableEventError as exc:
            log.error("dead-lettering a message", error=str(exc), dlq=self.dead_letters.topic.name)
            self._dead_letter(Letter(message, exc, epoch))
            return None

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error", error=str(error))
        return False

    def _reader(self, topic: str) -> str | None:
        if topic not in self._readers:
            try:
                self._readers[topic] = self.catalogue.topic(topic).record
            except KeyError:
                self._readers[topic] = None
        return self._readers[topic]

    # -- acknowledging -------------------------------------------------------------------------------

    def done(self, consumed: ConsumedEvent) -> None:
        """``consumed`` is finished (outputs acknowledged, rows committed): its offset may be stored.

        It is stored (and committed with the next commit) once every earlier message of its partition
        is done too; an event of an earlier assignment of its partition stores nothing.
        """
        self._ack(consumed.where, consumed.offset, consumed.epoch)

    def _ack(self, partition: Partition, offset: int, epoch: int) -> None:
        """Mark ``offset`` of ``partition`` done; store the position when it advanced."""
        advanced = self.offsets.ack(partition, offset, epoch)
        if advanced is None:
            return
        try:
            self.consumer.store_offsets(offsets=[TopicPartition(partition[0], partition[1], advanced)])
        except KafkaException as exc:  # revoked between the bookkeeping and the call
            log.warning("offset not stored", error=str(exc))

    def dead_letter(self, consumed: ConsumedEvent, error: BaseException) -> None:
        """Dead-letter an event the caller refuses (e.g. rows the database rejects); done once sent."""
        self._dead_letter(Letter(consumed.message, error, consumed.epoch))

    def _dead_letter(self, letter: Letter) -> None:
        if len(self.letters):  # keep the order: behind the letters already waiting
            self.letters.queue(letter)
        elif not self._send(letter):
            self.letters.failed(letter)

    def _send(self, letter: Letter) -> bool:
        try:
            self.dead_letters.send(letter.message, letter.error)
        except DeadLetterError as exc:
            self.metrics.dead_letter_failed()
            log.warning(
                "dead letter not acknowledged; its partition waits",
                error=str(exc),
                partition=letter.where[1],
                offset=letter.offset,
                retry_in_seconds=self.letters.delay_seconds,
            )
            return False
        self.metrics.dead_lettered()
        self.dead_lettered += 1
        self._ack(letter.where, letter.offset, letter.epoch)
        return True

    def _retry_letters(self) -> None:
        while (letter := self.letters.due()) is not None:
            if not self._send(letter):
                self.letters.failed()
                return
            self.letters.sent()

    @property
    def pending_dead_letters(self) -> int:
        """Dead letters waiting for the broker (their partitions paused, their offsets not stored)."""
        return len(self.letters)

    # -- pausing, stopping ---------------------------------------------------------------------------

    def pause(self) -> None:
        """Pause the whole assignment (new partitions too); keep calling :meth:`poll` meanwhile."""
        self._pause_all = True

    def resume(self) -> None:
        """Resume the assignment (partitions holding an unsent dead letter stay paused)."""
        self._pause_all = False

    @property
    def paused(self) -> bool:
        """Whether the caller asked for the assignment to be paused."""
        return self._pause_all

    def _sync_pauses(self) -> None:
        everything = self._pause_all or self.stopping
        wanted = set(self.assignment) if everything else set(self.letters.partitions & self.assignment)
        pause, resume = wanted - self._paused, self._paused - wanted
        try:
            if pause:
                self.consumer.pause([TopicPartition(t, p) for t, p in sorted(pause)])
            if resume:
                self.consumer.resume([TopicPartition(t, p) for t, p in sorted(resume)])
            self._paused = wanted
        except KafkaException as exc:  # e.g. a partition revoked meanwhile: tried again next turn
            log.warning("pause/resume failed", error=str(exc))

    def stop(self) -> None:
        """Drain: hand out nothing more (safe from signal handlers and other threads)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def commit(self) -> None:
        """Commit stored offsets now, synchronously (e.g. before shutting down)."""
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def close(self) -> None:
        """Commit what is stored and leave the group."""
        try:
            self.commit()
        finally:
            self.consumer.close()
