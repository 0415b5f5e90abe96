"""The aggregator's decision: is a tilt series ready, and what to emit (pure).

``decide(state, now_ms, rules)`` looks at a series' state and the time and returns the new state,
the commands to emit and the status to publish when it changed. It is called after every input
event and by the grace timer; the Faust application around it only stores states and sends values.

A series is *ready* when its acquisition has ended, every movie the source connector announced has
been seen, and every tilt angle's newest movie is settled (a micrograph with its CTF, a terminal
failure, or an exclusion known in advance). Until then it waits, but never longer than
``rules.grace_seconds`` after the end of acquisition was seen; then the command goes out with the
unsettled tilts marked ``missing``. An acquisition whose end is never announced is taken as ended
``rules.inactivity_seconds`` after its last new tilt was seen (an ``Ended`` with reason
``inactivity``, kept in the state; an announced end replaces it). After a decision, any change of
what a command would say (a late tilt, a retake, a missing tilt that arrived) waits again until
settled or a grace period has passed, and leads to the next version. Every decision has the
deterministic ``request_id`` series + version.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tiltstream.streams.aggregator.outputs import (
    failure_value,
    request_value,
    status_signature,
    status_value,
)
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.selection import TiltCounts, TiltSelection
from tiltstream.streams.aggregator.state import (
    INACTIVITY,
    DecisionRecord,
    Ended,
    SeriesState,
    request_id_for,
)

__all__ = ["Command", "Decision", "decide", "next_deadline_ms"]


@dataclass(frozen=True)
class Command:
    """An event to emit: ``record`` (short name) and its value."""

    record: str
    value: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` returns: the new state, commands to emit, and the status if it changed.

    ``status_counts`` are the tilt counts of the new status (None: the status did not change); the
    value itself (:attr:`status`) is built from them only when asked for, at ``now_ms``, since most
    statuses of a busy series are replaced by a newer one before they are sent.
    """

    state: SeriesState
    commands: tuple[Command, ...]
    status_counts: TiltCounts | None
    now_ms: int = 0

    @cached_property
    def status(self) -> dict[str, Any] | None:
        """The ``TiltSeriesStatus`` value to publish, or None when the status did not change."""
        if self.status_counts is None:
            return None
        return status_value(self.state, self.status_counts, self.now_ms)[1]


def _ready(state: SeriesState, counts: TiltCounts) -> bool:
    ended = state.ended
    if ended is None or len(state.movies) < ended.acquired_tilt_count:
        return False
    return counts.unsettled == 0


def _reason(state: SeriesState, view: TiltSelection, now_ms: int, rules: Rules) -> str | None:
    """Why a decision is due now, or None."""
    ended = state.ended
    if ended is None:
        return None
    ready = _ready(state, view.counts())
    if state.latest is None:
        if ready:
            return "complete"
        return "grace-period-expired" if now_ms >= ended.seen_at_ms + rules.grace_ms else None
    if state.dirty_since_ms is None:
        return None
    return "late-tilt" if ready or now_ms >= state.dirty_since_ms + rules.grace_ms else None


def _assumed_end(state: SeriesState, counts: TiltCounts, rules: Rules) -> Ended:
    """The end of an acquisition never announced, at the end of its inactivity period."""
    assert state.last_tilt_seen_ms is not None
    assert counts.last_acquired_ms is not None
    return Ended(
        event_id="",
        ended_at_ms=counts.last_acquired_ms,
        expected_tilt_count=counts.acquired,
        acquired_tilt_count=len(state.movies),
        reason=INACTIVITY,
        seen_at_ms=state.last_tilt_seen_ms + rules.inactivity_ms,
    )


def decide(
    state: SeriesState,
    now_ms: int,
    rules: Rules,
    selection: TiltSelection | None = None,
    movie_id: str | None = None,
) -> Decision:
    """The decision for ``state`` at wall-clock time ``now_ms`` (milliseconds since the epoch).

    ``selection`` is the series' :class:`TiltSelection`, last updated to the state before the event
    that concerned ``movie_id`` (None: any change); without one, the tilts are chosen afresh. Calling
    it again on the returned state at the same time changes nothing and emits nothing.
    """
    view = selection if selection is not None else TiltSelection(rules)
    view.update(state, movie_id)
    deadline = _inactivity_deadline(state, rules)
    if deadline is not None and now_ms >= deadline:
        state = state.with_(ended=_assumed_end(state, view.counts(), rules))
    if state.latest is not None:
        changed = view.signature() != state.latest.signature
        dirty = (state.dirty_since_ms or now_ms) if changed else None
        if dirty != state.dirty_since_ms:
            state = state.with_(dirty_since_ms=dirty)
    commands: tuple[Command, ...] = ()
    reason = _reason(state, view, now_ms, rules)
    if reason is not None:
        commands, state = _command(state, view, reason, now_ms, rules)
    counts = view.counts()
    signature = status_signature(state, counts)
    if signature == state.status_signature:
        return Decision(state, commands, None, now_ms)
    return Decision(state.with_(status_signature=signature), commands, counts, now_ms)


def _command(
    state: SeriesState, view: TiltSelection, reason: str, now_ms: int, rules: Rules
) -> tuple[tuple[Command, ...], SeriesState]:
    """The command of the next version, and the state that records it."""
    tilts = view.tilts()
    version = (state.latest.version if state.latest else 0) + 1
    request_id = request_id_for(state.tilt_series_id, version)
    emitted = request_value(state, tilts, version, request_id, reason, now_ms, rules) if tilts else None
    usable = sum(not t["excluded"] for t in emitted["tilts"]) if emitted else 0
    if emitted is not None and usable >= rules.min_usable_tilts:
        command = Command("ReconstructionRequested", emitted)
        kind = "requested"
    else:
        command = Command("ProcessingFailed", failure_value(state, tilts, version, request_id, now_ms, rules))
        kind = "failed"
    record = DecisionRecord(
        version=version,
        request_id=request_id,
        kind=kind,
        reason=reason,
        signature=view.signature(),
        decided_at_ms=now_ms,
        excluded_tilts=len(tilts) - usable,
        missing_tilts=view.counts().unsettled,
    )
    return (command,), state.with_(latest=record, dirty_since_ms=None)


def _inactivity_deadline(state: SeriesState, rules: Rules) -> int | None:
    """When a series whose end was not announced is taken as ended, or None."""
    if state.ended is not None or state.last_tilt_seen_ms is None or not state.movies:
        return None
    return state.last_tilt_seen_ms + rules.inactivity_ms


def next_deadline_ms(state: SeriesState, rules: Rules) -> int | None:
    """When :func:`decide` may next act without a new event (a grace or inactivity period ending)."""
    if state.ended is None:
        return _inactivity_deadline(state, rules)
    if state.latest is None:
        return state.ended.seen_at_ms + rules.grace_ms
    if state.dirty_since_ms is not None:
        return state.dirty_since_ms + rules.grace_ms
    return None
