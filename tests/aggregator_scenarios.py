"""Synthetic tilt series with known answers, for the aggregator's tests and benchmark.

A :class:`Scenario` is a list of input events (record, value) of one tilt series and, per tilt
angle, which movie must stand for it and why it is excluded (None when used, ``missing`` when it
never settles). Values are built from :func:`tiltstream.streams.samples.sample_event`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from tiltstream.streams.aggregator import INPUT_TYPES, InputRecord, Rules
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import default_registry

__all__ = ["OUTCOMES", "Scenario", "TiltPlan", "build_scenario", "scenarios", "typed", "with_defaults"]

#: What happens to a movie after acquisition.
OUTCOMES = ("used", "no-ctf", "unprocessed", "failed", "ctf-failed", "motion", "ctf-fit", "dark")

RULES = Rules(grace_seconds=60.0, min_usable_tilts=3)


@dataclass(frozen=True)
class TiltPlan:
    """One tilt angle: its outcome, and whether an earlier (superseded) take of it exists."""

    outcome: str
    retake: bool = False
    retake_outcome: str = "used"


@dataclass
class Scenario:
    """Input events of one series and the expected decision per angle."""

    tilt_series_id: str
    events: list[tuple[str, dict[str, Any]]]
    expected: dict[str, str | None]  # winning movie_id -> exclusion reason (None when used)
    superseded: set[str] = field(default_factory=set)
    movie_count: int = 0

    @property
    def usable(self) -> int:
        """Tilts a command must use."""
        return sum(reason is None for reason in self.expected.values())


def with_defaults(record: str, value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with every field the current schema added since the sample was written, at its default."""
    schema = default_registry().current(record).schema
    return {**{f["name"]: f["default"] for f in schema["fields"] if "default" in f}, **value}


_TYPES: dict[str, type[InputRecord]] = {kind.__name__: kind for kind in INPUT_TYPES}


def typed(record: str, value: dict[str, Any]) -> InputRecord:
    """The typed record of input event ``value`` of ``record`` (short name), as the aggregator reads it."""
    return _TYPES[record].from_dict(value)


def _with_meta(value: dict[str, Any], event_id: str, series_id: str) -> dict[str, Any]:
    return {**value, "metadata": {**value["metadata"], "event_id": event_id, "tilt_series_id": series_id}}


def _movie_events(
    series: int, series_id: str, tilt: int, take: int, outcome: str
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    movie_id = f"{series_id}/tilt{tilt}/take{take}"
    acquired = sample_event("MovieAcquired", series, tilt)
    acquired = with_defaults("MovieAcquired", _with_meta(acquired, f"acq-{movie_id}", series_id))
    acquired.update(
        movie_id=movie_id,
        acquired_at=acquired["acquired_at"] + timedelta(minutes=10 * take),
        dose_e_per_angstrom2=0.1 if outcome == "dark" else 3.0,
    )
    events: list[tuple[str, dict[str, Any]]] = [("MovieAcquired", acquired)]
    if outcome == "unprocessed":
        return movie_id, events
    if outcome == "failed":
        failed = _with_meta(sample_event("ProcessingFailed", series, tilt), f"fail-{movie_id}", series_id)
        failed = with_defaults("ProcessingFailed", failed)
        failed.update(movie_id=movie_id, subject_id=movie_id)
        return movie_id, [*events, ("ProcessingFailed", failed)]
    corrected = _with_meta(sample_event("MovieMotionCorrected", series, tilt), f"mc-{movie_id}", series_id)
    corrected.update(
        movie_id=movie_id,
        micrograph={"root": "processed", "path": f"{movie_id}.mrc"},
        total_motion_angstroms=500.0 if outcome == "motion" else 9.0,
        # the detector sees the dark tilt dark too; the others alike after 1/cos of the tilt
        mean_counts_per_pixel_per_second=(1.0 if outcome == "dark" else 50.0)
        * math.cos(math.radians(corrected["tilt_angle_degrees"])),
    )
    events.append(("MovieMotionCorrected", corrected))
    if outcome == "no-ctf":
        return movie_id, events
    if outcome == "ctf-failed":
        failed = _with_meta(sample_event("ProcessingFailed", series, tilt), f"ctffail-{movie_id}", series_id)
        failed = with_defaults("ProcessingFailed", failed)
        failed.update(movie_id=movie_id, subject_id=movie_id, stage="ctf")
        return movie_id, [*events, ("ProcessingFailed", failed)]
    ctf = _with_meta(sample_event("CtfEstimated", series, tilt), f"ctf-{movie_id}", series_id)
    ctf.update(movie_id=movie_id, fit_resolution_angstroms=45.0 if outcome == "ctf-fit" else 7.0)
    return movie_id, [*events, ("CtfEstimated", ctf)]


_REASON = {
    "used": None,
    "no-ctf": "missing",
    "unprocessed": "missing",
    "failed": "failed",
    "ctf-failed": "failed",
    "motion": "motion",
    "ctf-fit": "ctf-fit",
    "dark": "dark",
}


def build_scenario(plans: list[TiltPlan], series: int = 1, *, ended: bool = True) -> Scenario:
    """The events of a series with one tilt per plan (angles from the dose-symmetric scheme)."""
    series_id = f"cm40000-1:Position_{series}"
    events: list[tuple[str, dict[str, Any]]] = []
    expected: dict[str, str | None] = {}
    superseded: set[str] = set()
    movies = 0
    for tilt, plan in enumerate(plans):
        if plan.retake:
            old, old_events = _movie_events(series, series_id, tilt, 0, plan.retake_outcome)
            events += old_events
            superseded.add(old)
            movies += 1
        movie_id, movie_events = _movie_events(series, series_id, tilt, 1, plan.outcome)
        events += movie_events
        expected[movie_id] = _REASON[plan.outcome]
        movies += 1
    if ended:
        end = _with_meta(sample_event("TiltSeriesAcquisitionEnded", series), f"end-{series_id}", series_id)
        end = with_defaults("TiltSeriesAcquisitionEnded", end)
        end.update(expected_tilt_count=len(plans), acquired_tilt_count=movies)
        events.append(("TiltSeriesAcquisitionEnded", end))
    events = [(record, with_defaults(record, value)) for record, value in events]
    return Scenario(series_id, events, expected, superseded, movies)


@st.composite
def scenarios(draw: st.DrawFn, settled_only: bool = False, max_tilts: int = 10) -> Scenario:
    """Hypothesis strategy: a series of 1 to ``max_tilts`` tilts with random outcomes and retakes.

    ``settled_only`` leaves out outcomes that never settle. Dark tilts stay fewer than half, so the
    series' median dose is the normal one.
    """
    outcomes = [o for o in OUTCOMES if not settled_only or _REASON[o] != "missing"]
    count = draw(st.integers(1, max_tilts))
    plans = []
    for _ in range(count):
        outcome = draw(st.sampled_from(outcomes))
        retake = draw(st.booleans())
        retake_outcome = draw(st.sampled_from(OUTCOMES)) if retake else "used"
        plans.append(TiltPlan(outcome, retake, retake_outcome))
    darks = sum(p.outcome == "dark" for p in plans)
    if darks and darks * 2 >= count:
        plans = [TiltPlan("used", p.retake, p.retake_outcome) if p.outcome == "dark" else p for p in plans]
    return build_scenario(plans)
