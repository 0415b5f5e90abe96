"""Which input offsets the aggregator has processed, per partition, and what it may commit (pure).

faust-streaming 0.15.3 does not hand a stream every record of a partition exactly once and in order
around a rebalance. After an assignment, :meth:`faust.tables.recovery.Recovery.on_recovery_completed`
resumes the stream partitions while the Fetcher runs and only then awaits ``consumer.perform_seek()``;
records fetched in between are delivered into the agents' buffers, and the ``app.flow_control.resume()``
that follows the seek clears those buffers (``clear_on_resume``) without processing them. Their
re-fetched copies are then dropped by ``Consumer._drain_messages`` as "DROPPED MESSAGE" because it writes
its read offset back *after* awaiting the delivery of the stale batch, over the one the seek had just
reset. Its own commit bookkeeping (``Consumer._new_offset`` filling "gaps") can then commit past them.

So the aggregator does not rely on Faust's acknowledgements: the input topics are read with acks off
(Faust never commits them), :class:`Frontier` keeps, per partition, the first offset not yet processed,
an offset behind it is a redelivery (skipped: the state fold is idempotent anyway), an offset beyond it
means records were skipped (the application reads them itself first), and only the frontier is ever
committed, after the producer was flushed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Frontier", "TopicPartition"]

#: ``(topic, partition)``.
TopicPartition = tuple[str, int]


@dataclass
class Frontier:
    """Per input partition, the next offset to process: every offset before it has been processed.

    A partition is *known* once :meth:`start` gave it its starting point (the group's committed offset,
    or the log start when nothing was committed); :meth:`forget` drops partitions on revocation, since
    another instance may process them before they come back.
    """

    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    #: partitions found behind at the last :meth:`stalled` call, with their frontier then
    behind: dict[TopicPartition, int | None] = field(default_factory=dict)

    def knows(self, tp: TopicPartition) -> bool:
        """Whether ``tp`` has a starting point."""
        return tp in self.next_offsets

    def start(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Start the partitions of ``offsets`` not known yet at those offsets (already committed)."""
        for tp, offset in offsets.items():
            if tp not in self.next_offsets:
                self.next_offsets[tp] = offset
                self.committed[tp] = offset

    def missing(self, tp: TopicPartition, offset: int) -> range | None:
        """What must be processed before the record at ``offset``: None if it is a redelivery.

        An empty range when it is the next record; otherwise the skipped offsets before it (some may
        hold no record, such as transaction markers).
        """
        first = self.next_offsets[tp]
        if offset < first:
            return None
        return range(first, offset)

    def advance(self, tp: TopicPartition, to: int) -> None:
        """Every offset of ``tp`` before ``to`` is processed."""
        if to > self.next_offsets[tp]:
            self.next_offsets[tp] = to

    def to_commit(self, assigned: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The frontier of each (assigned) partition that moved since it was last committed."""
        wanted = None if assigned is None else set(assigned)
        return {
            tp: offset
            for tp, offset in self.next_offsets.items()
            if (wanted is None or tp in wanted) and offset > self.committed.get(tp, -1)
        }

    def mark_committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """``offsets`` are now the group's committed offsets."""
        for tp, offset in offsets.items():
            if offset > self.committed.get(tp, -1):
                self.committed[tp] = offset

    def stalled(self, highwaters: Mapping[TopicPartition, int]) -> list[TopicPartition]:
        """Partitions behind their high watermark that made no progress since the previous call.

        Faust may drop the last records of a partition (see above); no later record then reveals the
        hole, so the application looks for partitions that stay behind and reads the rest itself. A
        partition not started yet counts as behind when its log is not empty.
        """
        stuck = []
        behind: dict[TopicPartition, int | None] = {}
        for tp, end in sorted(highwaters.items()):
            position = self.next_offsets.get(tp)
            if end > (position or 0):
                if tp in self.behind and self.behind[tp] == position:
                    stuck.append(tp)
                behind[tp] = position
        self.behind = behind
        return stuck

    def forget(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Drop ``tps`` (all when None): they start again from the committed offset when next seen."""
        for tp in list(self.next_offsets) if tps is None else tps:
            self.next_offsets.pop(tp, None)
            self.committed.pop(tp, None)
            self.behind.pop(tp, None)
