"""Committing the aggregator's input offsets: what was processed, once what it produced is acknowledged.

The input topics are read with acks off, so Faust never commits them (see
:mod:`~tiltstream.streams.aggregator.offsets`); :meth:`Checkpoint.commit` does, on a timer and when
partitions are revoked. Processing a record changes only the worker's decoded copy of its series'
entry (:class:`~tiltstream.streams.aggregator.table.SeriesTable`); the table is written here, once
per interval, in this order (the order is what makes a crash at any point lose nothing):

1. not while Faust rebalances, except from the revocation callback (Faust has waited for the agent to
   finish its record there, and the group's generation is still valid);
2. take the frontier of every partition this worker still holds that moved since its last commit:
   every record before it has been processed completely, its changes are in the decoded copy;
3. send the statuses kept since the last checkpoint (a series' newest, when only its counts moved),
   then flush the table: write every entry changed since the last checkpoint to the RocksDB store,
   which queues its changelog record in the producer (the state store and its changelog);
4. flush the producer: the changelog records, the statuses and the commands that processing those
   records produced are all acknowledged by the broker (acks=all) before any offset moves past them;
5. commit exactly those offsets to the group (:func:`commit_offsets`);
6. record them as committed, so the next checkpoint commits only what moved again.

A kill -9 anywhere before step 5 leaves the offsets where they were: the restarted worker reads the
table from its changelog (as of some earlier checkpoint, or later) and processes again every record
after the committed offset; folding is idempotent, so the state comes out the same. Commands never
wait for a checkpoint: the entry with its outbox is written and flushed before they are sent (see
:mod:`~tiltstream.streams.aggregator.entry`). After a crash between steps 4 and 5 the records are
processed twice; their commands carry the same ``request_id``.

After revocation every partition is forgotten and the decoded copy dropped: a partition starts again
from the committed offset when next delivered, and its entries are read from the table, since another
worker may process it meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tiltstream.streams.aggregator.offsets import Frontier, TopicPartition
from tiltstream.streams.aggregator.table import SeriesTable

__all__ = ["Checkpoint", "commit_offsets", "faust_tp"]


def faust_tp(tp: TopicPartition) -> Any:
    """Faust's ``TP`` for ``(topic, partition)``."""
    from faust.types import TP

    return TP(*tp)


async def commit_offsets(consumer: Any, offsets: Mapping[TopicPartition, int]) -> bool:
    """Commit exactly ``offsets`` for the group through Faust's ``consumer``; False if not committed.

    The aggregator's one call of a private Faust method: ``Consumer._commit`` is the driver's commit of
    the offsets it is given (it leaves out partitions no longer assigned, and returns False when the
    group rebalanced meanwhile). The public ``Consumer.commit`` commits Faust's own acknowledgement
    bookkeeping instead, which these topics do not use (Faust's gap filling there is what can commit
    past lost records), and Faust does not expose its aiokafka consumer.
    """
    return bool(await consumer._commit({faust_tp(tp): offset for tp, offset in offsets.items()}))


class Checkpoint:
    """Commits the :class:`Frontier` after flushing the table and the producer (see the module's steps).

    Parameters
    ----------
    app
        The ``faust.App``: its rebalancing flag, consumer and producer.
    frontier
        The input offsets processed so far (advanced by the intake).
    table
        The series table: its changed entries are written before the producer is flushed.
    send_statuses
        Sends the statuses the handler kept since the last checkpoint (before the producer flush).
    """

    def __init__(
        self,
        app: Any,
        frontier: Frontier,
        table: SeriesTable,
        send_statuses: Callable[[], Awaitable[int]],
    ) -> None:
        self.app = app
        self.frontier = frontier
        self.table = table
        self.send_statuses = send_statuses

    async def commit(self, *, during_rebalance: bool = False) -> bool:
        """Commit what was processed since the last checkpoint; True when offsets were committed."""
        if self.app.rebalancing and not during_rebalance:
            return False
        offsets = self.offsets_to_commit()
        await self.send_statuses()
        self.table.flush()
        if not offsets:
            return False
        await self.app.producer.flush()
        if not await commit_offsets(self.app.consumer, offsets):
            return False
        self.frontier.mark_committed(offsets)
        return True

    def offsets_to_commit(self) -> dict[TopicPartition, int]:
        """The frontier of each partition still assigned that moved since it was last committed."""
        assigned = {(t.topic, t.partition) for t in self.app.consumer.assignment()}
        return self.frontier.to_commit(assigned)

    async def on_timer(self) -> None:
        """Commit (every ``commit_interval_seconds``; a Faust timer must take no parameters)."""
        await self.commit()

    async def on_partitions_revoked(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        """Commit during the rebalance, then forget every partition (the ``on_partitions_revoked`` signal)."""
        await self.commit(during_rebalance=True)
        self.frontier.forget()
        self.table.forget()
