"""The aggregator's own offset bookkeeping (pure), against deliveries as faust-streaming makes them.

Faust 0.15.3 can deliver a partition's records again (a rewind after its seek), skip some (buffers
cleared on resume, read offset overwritten) and lose a partition's tail. Whatever it delivers, the
application's loop over :class:`Frontier` must process every record from the committed offset on, once
and in order, and commit only what was processed.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tiltstream.streams.aggregator.offsets import Frontier

TP = ("movie.acquired", 1)


def run_agent(
    frontier: Frontier, log: list[int], committed: int, deliveries: list[int], end: int
) -> tuple[list[int], list[int]]:
    """The application's loop: skip redeliveries, read skipped records first, then catch up the tail.

    ``log`` holds the offsets that have a record (others are markers); returns the offsets processed
    and the committed offsets after each record.
    """
    processed: list[int] = []
    commits: list[int] = []

    def process(offset: int) -> None:
        processed.append(offset)
        frontier.advance(TP, offset + 1)
        offsets = frontier.to_commit([TP])
        frontier.mark_committed(offsets)
        commits.extend(offsets.values())

    def backfill(missing: range) -> None:
        for offset in log:
            if offset in missing:
                process(offset)
        frontier.advance(TP, missing.stop)

    for offset in deliveries:
        if not frontier.knows(TP):
            frontier.start({TP: committed})
        missing = frontier.missing(TP, offset)
        if missing is None:
            continue
        backfill(missing)
        process(offset)
    # the tail: a nudge after the partition stalled behind its end
    if not frontier.knows(TP):
        frontier.start({TP: committed})
    tail = frontier.missing(TP, end)
    if tail:
        backfill(tail)
    return processed, commits


@st.composite
def faust_deliveries(draw: st.DrawFn) -> tuple[list[int], int, list[int], int]:
    """A log (some offsets without a record), a committed offset, and what faust hands the agent."""
    end = draw(st.integers(0, 40))
    log = [o for o in range(end) if draw(st.booleans()) or o % 3]
    committed = draw(st.integers(0, end))
    # records from around the committed offset on, some repeated or rewound, some skipped
    candidates = [o for o in log if o >= committed - 3]
    deliveries = draw(st.lists(st.sampled_from(candidates), max_size=60)) if candidates else []
    return log, committed, deliveries, end


@settings(max_examples=400, deadline=None)
@given(faust_deliveries())
def test_every_record_from_the_committed_offset_is_processed_once_and_in_order(
    case: tuple[list[int], int, list[int], int],
) -> None:
    log, committed, deliveries, end = case
    processed, _ = run_agent(Frontier(), log, committed, deliveries, end)
    assert processed == [o for o in log if o >= committed]


@settings(max_examples=400, deadline=None)
@given(faust_deliveries())
def test_commits_never_pass_an_unprocessed_record_and_only_move_forward(
    case: tuple[list[int], int, list[int], int],
) -> None:
    log, committed, deliveries, end = case
    processed, commits = run_agent(Frontier(), log, committed, deliveries, end)
    assert commits == sorted(set(commits))
    assert all(c > committed for c in commits)
    for commit in commits:
        # every record before a committed offset was processed by then
        assert all(o in processed for o in log if committed <= o < commit)


def test_a_rewind_is_skipped_and_a_hole_is_reported() -> None:
    frontier = Frontier()
    frontier.start({TP: 24})
    assert frontier.missing(TP, 24) == range(24, 24)
    frontier.advance(TP, 25)
    assert frontier.missing(TP, 23) is None  # delivered again after faust's seek
    assert frontier.missing(TP, 24) is None
    assert frontier.missing(TP, 30) == range(25, 30)  # 25..29 never delivered
    frontier.advance(TP, 31)
    assert frontier.to_commit() == {TP: 31}
    frontier.mark_committed({TP: 31})
    assert frontier.to_commit() == {}


def test_start_keeps_the_frontier_of_known_partitions() -> None:
    frontier = Frontier()
    frontier.start({TP: 5})
    frontier.advance(TP, 9)
    frontier.start({TP: 2, ("ticks", 1): 0})
    assert frontier.next_offsets == {TP: 9, ("ticks", 1): 0}


def test_forget_restarts_from_the_committed_offset() -> None:
    frontier = Frontier()
    frontier.start({TP: 5, ("ticks", 1): 0})
    frontier.advance(TP, 9)
    frontier.forget([TP])
    assert not frontier.knows(TP)
    assert frontier.knows(("ticks", 1))
    frontier.forget()
    assert frontier.next_offsets == {}
    assert frontier.to_commit() == {}


def test_to_commit_only_for_assigned_partitions() -> None:
    frontier = Frontier()
    frontier.start({TP: 0, ("ticks", 1): 0})
    frontier.advance(TP, 3)
    frontier.advance(("ticks", 1), 2)
    assert frontier.to_commit([TP]) == {TP: 3}


def test_stalled_needs_two_looks_without_progress() -> None:
    frontier = Frontier()
    frontier.start({TP: 10, ("ticks", 1): 4})
    other = ("movie.acquired", 2)  # assigned, nothing delivered yet
    ends = {TP: 15, ("ticks", 1): 4, other: 7}
    assert frontier.stalled(ends) == []  # first look: behind, but maybe just busy
    frontier.advance(TP, 12)
    assert frontier.stalled(ends) == [other]  # TP moved; the other did not
    assert frontier.stalled(ends) == [TP, other]
    frontier.advance(TP, 15)
    assert frontier.stalled({**ends, TP: 15}) == [other]
    assert frontier.stalled({other: 0}) == []  # an empty log is never behind
