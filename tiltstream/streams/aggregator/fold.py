"""Folding one input event into a tilt series' state (pure).

Every fact is merged by a total order on ``(attempt, event_id)``: the same event twice changes
nothing, and a set of events gives the same state in any order. The exceptions are wall-clock
times that only move deadlines: :attr:`Ended.seen_at_ms`, when the aggregator first saw the end of
acquisition (the earliest ``now`` wins), and :attr:`SeriesState.last_tilt_seen_ms`, when it last saw
a movie new to the series (the latest wins; a movie seen again does not move it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

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

__all__ = ["INPUT_RECORDS", "SERIES_STAGES", "apply_event", "to_ms"]

#: The records the aggregator folds into its state.
INPUT_RECORDS: tuple[str, ...] = (
    "MovieAcquired",
    "MovieMotionCorrected",
    "CtfEstimated",
    "ProcessingFailed",
    "TiltSeriesAcquisitionEnded",
    "TomogramReconstructed",
    "TomogramDenoised",
)

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


def apply_event(state: SeriesState, record: str, value: Mapping[str, Any], now_ms: int) -> SeriesState:
    """The state after the event ``value`` of ``record`` (short name), seen at ``now_ms``.

    Records the aggregator does not use leave the state unchanged.
    """
    fold = _FOLDS.get(record)
    if fold is None:
        return state
    meta = value["metadata"]
    if not state.microscope:
        state = state.with_(microscope=meta["microscope"], session_id=meta["session_id"])
    return fold(state, value, _Seen(meta["event_id"], meta.get("attempt", 1), now_ms))


@dataclass(frozen=True)
class _Seen:
    """What every fold needs besides the value: the event's id and attempt, and when it was seen."""

    event_id: str
    attempt: int
    now_ms: int


def _fold_acquired(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    movie = Acquired(
        movie_id=value["movie_id"],
        event_id=seen.event_id,
        acquisition_order=value["acquisition_order"],
        tilt_angle_degrees=value["tilt_angle_degrees"],
        acquired_at_ms=to_ms(value["acquired_at"]),
        dose_e_per_angstrom2=value["dose_e_per_angstrom2"],
        prior_dose_e_per_angstrom2=value["prior_dose_e_per_angstrom2"],
        tilt_axis_angle_degrees=value["tilt_axis_angle_degrees"],
        pixel_size_angstroms=value["pixel_size_angstroms"],
        voltage_kv=value["voltage_kv"],
        spherical_aberration_mm=value["spherical_aberration_mm"],
        amplitude_contrast=value["amplitude_contrast"],
    )
    if movie.movie_id in state.movies:  # seen before: a duplicate or a newer attempt of it
        return state.with_(movies=_merge(state.movies, movie.movie_id, movie))
    last = max(state.last_tilt_seen_ms or seen.now_ms, seen.now_ms)
    return state.with_(movies=_merge(state.movies, movie.movie_id, movie), last_tilt_seen_ms=last)


def _fold_corrected(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    corrected = Corrected(
        movie_id=value["movie_id"],
        event_id=seen.event_id,
        attempt=seen.attempt,
        micrograph_root=value["micrograph"]["root"],
        micrograph_path=value["micrograph"]["path"],
        pixel_size_angstroms=value["pixel_size_angstroms"],
        total_motion_angstroms=value["total_motion_angstroms"],
    )
    return state.with_(corrected=_merge(state.corrected, corrected.movie_id, corrected))


def _fold_ctf(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    fit = CtfFit(
        movie_id=value["movie_id"],
        event_id=seen.event_id,
        attempt=seen.attempt,
        defocus_u_angstroms=value["defocus_u_angstroms"],
        defocus_v_angstroms=value["defocus_v_angstroms"],
        astigmatism_angle_degrees=value["astigmatism_angle_degrees"],
        fit_resolution_angstroms=value["fit_resolution_angstroms"],
    )
    return state.with_(ctf=_merge(state.ctf, fit.movie_id, fit))


def _fold_ended(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    ended = Ended(
        event_id=seen.event_id,
        ended_at_ms=to_ms(value["ended_at"]),
        expected_tilt_count=value["expected_tilt_count"],
        acquired_tilt_count=value["acquired_tilt_count"],
        reason=value["reason"],
        seen_at_ms=seen.now_ms,
    )
    old = state.ended
    if old is not None and old.reason == INACTIVITY:  # the announced end replaces an assumed one
        ended = replace(ended, seen_at_ms=min(old.seen_at_ms, seen.now_ms))
    elif old is not None:
        keep = old if (old.ended_at_ms, old.event_id) >= (ended.ended_at_ms, ended.event_id) else ended
        ended = replace(keep, seen_at_ms=min(old.seen_at_ms, seen.now_ms))
    return state.with_(ended=ended)


def _tomogram_result(value: Mapping[str, Any], path: Mapping[str, str], seen: _Seen) -> TomogramResult:
    return TomogramResult(
        version=value["version"],
        event_id=seen.event_id,
        at_ms=to_ms(value["metadata"]["occurred_at"]),
        root=path["root"],
        path=path["path"],
    )


def _fold_reconstructed(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    result = _tomogram_result(value, value["tomogram"], seen)
    return state.with_(reconstructed=_newer(state.reconstructed, result))


def _fold_denoised(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    result = _tomogram_result(value, value["denoised_tomogram"], seen)
    return state.with_(denoised=_newer(state.denoised, result))


def _fold_failure(state: SeriesState, value: Mapping[str, Any], seen: _Seen) -> SeriesState:
    return _apply_failure(state, value, seen.event_id, seen.attempt)


def _apply_failure(state: SeriesState, value: Mapping[str, Any], event_id: str, attempt: int) -> SeriesState:
    stage: str = value["stage"]
    if stage in SERIES_STAGES:
        version = version_from_request_id(value.get("request_id") or value["subject_id"])
        if stage == "aggregate" or version is None:
            return state
        failure = TomogramResult(
            version=version,
            event_id=event_id,
            at_ms=to_ms(value["metadata"]["occurred_at"]),
            error=f"{stage}: {value['error_class']}: {value['error_message']}",
        )
        return state.with_(reconstruct_failed=_newer(state.reconstruct_failed, failure))
    movie_id = value.get("movie_id") or value["subject_id"]
    failure_fact = Failure(
        movie_id=movie_id, event_id=event_id, attempt=attempt, stage=stage, error_class=value["error_class"]
    )
    return state.with_(failures=_merge(state.failures, f"{stage}/{movie_id}", failure_fact))


_Fold = Callable[[SeriesState, Mapping[str, Any], _Seen], SeriesState]

#: How each input record folds into the state.
_FOLDS: dict[str, _Fold] = {
    "MovieAcquired": _fold_acquired,
    "MovieMotionCorrected": _fold_corrected,
    "CtfEstimated": _fold_ctf,
    "TiltSeriesAcquisitionEnded": _fold_ended,
    "ProcessingFailed": _fold_failure,
    "TomogramReconstructed": _fold_reconstructed,
    "TomogramDenoised": _fold_denoised,
}
