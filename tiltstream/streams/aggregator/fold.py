"""Folding one input event into a tilt series' state (pure).

The events are the typed records of :mod:`tiltstream.streams.events` (:data:`InputRecord`). Every
fact is merged by a total order on ``(attempt, event_id)``: the same event twice changes nothing,
and a set of events gives the same state in any order. The exceptions are wall-clock times that
only move deadlines: :attr:`Ended.seen_at_ms`, when the aggregator first saw the end of acquisition
(the earliest ``now`` wins), and :attr:`SeriesState.last_tilt_seen_ms`, when it last saw a movie
new to the series (the latest wins; a movie seen again does not move it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar, assert_never

from tiltstream.stages import REGISTRY
from tiltstream.streams.aggregator.state import (
    INACTIVITY,
    Acquired,
    Corrected,
    CtfFit,
    Ended,
    Failure,
    SeriesState,
    TomogramResult,
    version_from_request_id,
)
from tiltstream.streams.events import (
    CtfEstimated,
    DataPath,
    MovieAcquired,
    MovieMotionCorrected,
    ProcessingFailed,
    TiltSeriesAcquisitionEnded,
    TomogramDenoised,
    TomogramReconstructed,
)

__all__ = ["INPUT_RECORDS", "INPUT_TYPES", "SERIES_STAGES", "InputRecord", "apply_event", "to_ms"]

#: An event the aggregator folds into its state.
InputRecord = (
    MovieAcquired
    | MovieMotionCorrected
    | CtfEstimated
    | ProcessingFailed
    | TiltSeriesAcquisitionEnded
    | TomogramReconstructed
    | TomogramDenoised
)

#: The record classes the aggregator reads, one per input topic.
INPUT_TYPES: tuple[type[InputRecord], ...] = (
    MovieAcquired,
    MovieMotionCorrected,
    CtfEstimated,
    ProcessingFailed,
    TiltSeriesAcquisitionEnded,
    TomogramReconstructed,
    TomogramDenoised,
)

#: Their short record names.
INPUT_RECORDS: tuple[str, ...] = tuple(kind.__name__ for kind in INPUT_TYPES)

#: ``ProcessingFailed`` stages that concern a whole series, not one tilt.
SERIES_STAGES = REGISTRY.series_stages()

_T = TypeVar("_T", Acquired, Corrected, CtfFit, Failure)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime."""
    return round(moment.timestamp() * 1000)


def _rank(fact: Any) -> tuple[int, str]:
    return (getattr(fact, "attempt", 1), fact.event_id)


def _merge(facts: dict[str, _T], key: str, fact: _T) -> dict[str, _T]:
    old = facts.get(key)
    if old is not None and _rank(old) >= _rank(fact):
        return facts
    return {**facts, key: fact}


def _newer(old: TomogramResult | None, new: TomogramResult) -> TomogramResult:
    if old is not None and (old.version, old.event_id) >= (new.version, new.event_id):
        return old
    return new


def apply_event(state: SeriesState, event: InputRecord, now_ms: int) -> SeriesState:
    """The state after ``event``, seen at ``now_ms``."""
    meta = event.metadata
    if not state.microscope:
        state = state.with_(microscope=meta.microscope, session_id=meta.session_id)
    seen = _Seen(meta.event_id, meta.attempt, now_ms)
    match event:  # the most frequent first
        case MovieAcquired():
            return _fold_acquired(state, event, seen)
        case MovieMotionCorrected():
            return _fold_corrected(state, event, seen)
        case CtfEstimated():
            return _fold_ctf(state, event, seen)
        case ProcessingFailed():
            return _fold_failure(state, event, seen)
        case TiltSeriesAcquisitionEnded():
            return _fold_ended(state, event, seen)
        case TomogramReconstructed():
            result = _tomogram_result(event.version, event.tomogram, meta.occurred_at, seen)
            return state.with_(reconstructed=_newer(state.reconstructed, result))
        case TomogramDenoised():
            result = _tomogram_result(event.version, event.denoised_tomogram, meta.occurred_at, seen)
            return state.with_(denoised=_newer(state.denoised, result))
        case _:
            assert_never(event)


@dataclass(frozen=True)
class _Seen:
    """What every fold needs besides the event: its id and attempt, and when it was seen."""

    event_id: str
    attempt: int
    now_ms: int


def _fold_acquired(state: SeriesState, event: MovieAcquired, seen: _Seen) -> SeriesState:
    movie = Acquired(
        movie_id=event.movie_id,
        event_id=seen.event_id,
        acquisition_order=event.acquisition_order,
        tilt_angle_degrees=event.tilt_angle_degrees,
        acquired_at_ms=to_ms(event.acquired_at),
        dose_e_per_angstrom2=event.dose_e_per_angstrom2,
        prior_dose_e_per_angstrom2=event.prior_dose_e_per_angstrom2,
        tilt_axis_angle_degrees=event.tilt_axis_angle_degrees,
        pixel_size_angstroms=event.pixel_size_angstroms,
        voltage_kv=event.voltage_kv,
        spherical_aberration_mm=event.spherical_aberration_mm,
        amplitude_contrast=event.amplitude_contrast,
    )
    if movie.movie_id in state.movies:  # seen before: a duplicate or a newer attempt of it
        return state.with_(movies=_merge(state.movies, movie.movie_id, movie))
    last = max(state.last_tilt_seen_ms or seen.now_ms, seen.now_ms)
    return state.with_(movies=_merge(state.movies, movie.movie_id, movie), last_tilt_seen_ms=last)


def _fold_corrected(state: SeriesState, event: MovieMotionCorrected, seen: _Seen) -> SeriesState:
    corrected = Corrected(
        movie_id=event.movie_id,
        event_id=seen.event_id,
        attempt=seen.attempt,
        micrograph_root=event.micrograph.root,
        micrograph_path=event.micrograph.path,
        pixel_size_angstroms=event.pixel_size_angstroms,
        total_motion_angstroms=event.total_motion_angstroms,
        mean_counts_per_pixel_per_second=event.mean_counts_per_pixel_per_second,
        micrograph_even=None
        if event.micrograph_even is None
        else [event.micrograph_even.root, event.micrograph_even.path],
        micrograph_odd=None
        if event.micrograph_odd is None
        else [event.micrograph_odd.root, event.micrograph_odd.path],
    )
    return state.with_(corrected=_merge(state.corrected, corrected.movie_id, corrected))


def _fold_ctf(state: SeriesState, event: CtfEstimated, seen: _Seen) -> SeriesState:
    fit = CtfFit(
        movie_id=event.movie_id,
        event_id=seen.event_id,
        attempt=seen.attempt,
        defocus_u_angstroms=event.defocus_u_angstroms,
        defocus_v_angstroms=event.defocus_v_angstroms,
        astigmatism_angle_degrees=event.astigmatism_angle_degrees,
        fit_resolution_angstroms=event.fit_resolution_angstroms,
    )
    return state.with_(ctf=_merge(state.ctf, fit.movie_id, fit))


def _fold_ended(state: SeriesState, event: TiltSeriesAcquisitionEnded, seen: _Seen) -> SeriesState:
    ended = Ended(
        event_id=seen.event_id,
        ended_at_ms=to_ms(event.ended_at),
        expected_tilt_count=event.expected_tilt_count,
        acquired_tilt_count=event.acquired_tilt_count,
        reason=event.reason,
        seen_at_ms=seen.now_ms,
    )
    old = state.ended
    if old is not None and old.reason == INACTIVITY:  # the announced end replaces an assumed one
        ended = replace(ended, seen_at_ms=min(old.seen_at_ms, seen.now_ms))
    elif old is not None:
        keep = old if (old.ended_at_ms, old.event_id) >= (ended.ended_at_ms, ended.event_id) else ended
        ended = replace(keep, seen_at_ms=min(old.seen_at_ms, seen.now_ms))
    return state.with_(ended=ended)


def _tomogram_result(version: int, path: DataPath, occurred_at: datetime, seen: _Seen) -> TomogramResult:
    return TomogramResult(
        version=version, event_id=seen.event_id, at_ms=to_ms(occurred_at), root=path.root, path=path.path
    )


def _fold_failure(state: SeriesState, event: ProcessingFailed, seen: _Seen) -> SeriesState:
    stage = event.stage
    if stage in SERIES_STAGES:
        version = version_from_request_id(event.request_id or event.subject_id)
        if stage == "aggregate" or version is None:
            return state
        failure = TomogramResult(
            version=version,
            event_id=seen.event_id,
            at_ms=to_ms(event.metadata.occurred_at),
            error=f"{stage}: {event.error_class}: {event.error_message}",
        )
        return state.with_(reconstruct_failed=_newer(state.reconstruct_failed, failure))
    movie_id = event.movie_id or event.subject_id
    failure_fact = Failure(
        movie_id=movie_id,
        event_id=seen.event_id,
        attempt=seen.attempt,
        stage=stage,
        error_class=event.error_class,
    )
    return state.with_(failures=_merge(state.failures, f"{stage}/{movie_id}", failure_fact))
