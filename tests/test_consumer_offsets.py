"""The runtime's offset bookkeeping without a broker: stored only past finished work."""

from __future__ import annotations

from tiltstream.streams.runtime.offsets import OffsetTracker

P = ("tiltstream.movie.acquired", 0)


def test_the_stored_position_never_passes_an_unfinished_message() -> None:
    tracker = OffsetTracker()
    tracker.assigned([P])
    epoch = tracker.track(P, 10)
    assert epoch is not None
    for offset in (11, 12):
        tracker.track(P, offset)
    assert tracker.ack(P, 12, epoch) is None  # 10 and 11 still running
    assert tracker.ack(P, 11, epoch) is None
    assert tracker.in_flight(P) == 1
    assert tracker.ack(P, 10, epoch) == 13  # the whole prefix is done
    assert tracker.ack(P, 10, epoch) is None  # a second acknowledgement changes nothing


def test_acknowledgements_of_an_earlier_assignment_store_nothing() -> None:
    tracker = OffsetTracker()
    tracker.assigned([P])
    old = tracker.track(P, 5)
    assert old is not None
    assert tracker.revoked([P]) == {}
    assert tracker.track(P, 5) is None  # not ours while revoked
    tracker.assigned([P])
    new = tracker.track(P, 5)
    assert new is not None
    assert new != old
    assert tracker.ack(P, 5, old) is None
    assert tracker.ack(P, 5, new) == 6
    assert tracker.revoked([P]) == {P: 6}  # what to commit before letting the partition go


def test_a_position_that_moves_back_forgets_what_was_in_flight() -> None:
    tracker = OffsetTracker()
    tracker.assigned([P])
    epoch = tracker.track(P, 20)
    assert epoch is not None
    tracker.track(P, 21)
    tracker.track(P, 15)  # a seek back: 20 and 21 come again
    assert tracker.in_flight(P) == 1
    assert tracker.ack(P, 21, epoch) is None
    assert tracker.ack(P, 15, epoch) == 16
