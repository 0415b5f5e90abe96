"""The event values the aggregator emits, built from a series' state (pure).

``ReconstructionRequested`` and the aggregator's ``ProcessingFailed`` carry event ids that depend only
on the series and the version, so a command re-emitted after a crash is the same fact.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import SeriesState
from tiltstream.streams.aggregator.tilts import TiltChoice, marked, signature_part

if TYPE_CHECKING:
    from tiltstream.streams.aggregator.selection import TiltCounts
from tiltstream.streams.metadata import make_metadata

__all__ = [
    "SERVICE",
    "content_signature",
    "exclusion_counts",
    "failure_value",
    "from_ms",
    "request_value",
    "series_state_name",
    "status_signature",
    "status_value",
]

#: The ``producer.service`` of every event the aggregator writes.
SERVICE = "aggregator"


def from_ms(ms: int | None) -> datetime | None:
    """A UTC datetime from milliseconds since the epoch (None stays None)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _marked(tilts: list[TiltChoice]) -> list[tuple[TiltChoice, bool, str | None]]:
    """Each tilt with its exclusion as emitted: unsettled tilts are ``missing``."""
    return [(t, *marked(t)) for t in tilts]


def content_signature(tilts: list[TiltChoice]) -> str:
    """What a command built from ``tilts`` would say, as a digest (a change means a new version).

    The digest of the JSON list of each tilt's :func:`signature_part`, so that a
    :class:`~tiltstream.streams.aggregator.selection.TiltSelection` can keep the parts one by one.
    """
    text = "[" + ",".join(signature_part(t) for t in tilts) + "]"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _metadata(state: SeriesState, record: str, key: tuple[object, ...], now_ms: int) -> dict[str, Any]:
    return make_metadata(
        record,
        service=SERVICE,
        microscope=state.microscope,
        session_id=state.session_id,
        tilt_series_id=state.tilt_series_id,
        key=key,
        occurred_at=from_ms(now_ms),
    )


def request_value(
    state: SeriesState,
    tilts: list[TiltChoice],
    version: int,
    request_id: str,
    reason: str,
    now_ms: int,
    rules: Rules,
) -> dict[str, Any]:
    """A ``ReconstructionRequested`` value for ``tilts`` (at least one) as version ``version``."""
    marked = _marked(tilts)
    first = tilts[0].movie
    used = [t for t, excluded, _ in marked if not excluded]
    pixel = next(
        (
            state.corrected[t.movie.movie_id].pixel_size_angstroms
            for t in used
            if t.movie.movie_id in state.corrected
        ),
        first.pixel_size_angstroms,
    )
    return {
        "metadata": _metadata(state, "ReconstructionRequested", (version,), now_ms),
        "request_id": request_id,
        "version": version,
        "reason": reason,
        "tilts": [
            {
                "movie_id": t.movie.movie_id,
                "acquisition_order": t.movie.acquisition_order,
                "tilt_angle_degrees": t.movie.tilt_angle_degrees,
                "micrograph": _data_path(t.micrograph) if t.micrograph else None,
                "prior_dose_e_per_angstrom2": t.movie.prior_dose_e_per_angstrom2,
                "dose_e_per_angstrom2": t.movie.dose_e_per_angstrom2,
                "defocus_u_angstroms": t.ctf.defocus_u_angstroms if t.ctf else None,
                "defocus_v_angstroms": t.ctf.defocus_v_angstroms if t.ctf else None,
                "astigmatism_angle_degrees": t.ctf.astigmatism_angle_degrees if t.ctf else None,
                "excluded": excluded,
                "exclusion_reason": why,
                "micrograph_even": _data_path(t.halves[0]) if t.halves else None,
                "micrograph_odd": _data_path(t.halves[1]) if t.halves else None,
            }
            for t, excluded, why in marked
        ],
        "tilt_axis_angle_degrees": first.tilt_axis_angle_degrees,
        "pixel_size_angstroms": pixel,
        "voltage_kv": first.voltage_kv,
        "spherical_aberration_mm": first.spherical_aberration_mm,
        "amplitude_contrast": first.amplitude_contrast,
        "binning": rules.binning,
        "thickness_angstroms": rules.thickness_angstroms,
        "missing_tilt_count": sum(why == "missing" for _, _, why in marked),
    }


def _data_path(root_and_path: tuple[str, str]) -> dict[str, str]:
    return {"root": root_and_path[0], "path": root_and_path[1]}


def exclusion_counts(tilts: list[TiltChoice]) -> dict[str, int]:
    """How many tilts each exclusion reason leaves out (as a command would mark them)."""
    return dict(sorted(Counter(why for _, excluded, why in _marked(tilts) if excluded and why).items()))


def failure_value(
    state: SeriesState, tilts: list[TiltChoice], version: int, request_id: str, now_ms: int, rules: Rules
) -> dict[str, Any]:
    """A ``ProcessingFailed`` (stage ``aggregate``) for a series with too few usable tilts."""
    usable = sum(not excluded for _, excluded, _ in _marked(tilts))
    excluded = ", ".join(f"{why}: {n}" for why, n in exclusion_counts(tilts).items()) or "none"
    return {
        "metadata": _metadata(state, "ProcessingFailed", (version, "too-few-tilts"), now_ms),
        "stage": "aggregate",
        "subject_id": request_id,
        "movie_id": None,
        "request_id": request_id,
        "error_class": "TooFewUsableTiltsError",
        "error_message": (
            f"{usable} usable tilt(s) of {len(tilts)}, minimum {rules.min_usable_tilts} (excluded {excluded})"
        ),
        "failure_kind": "permanent",
        "attempts": 1,
        "input_topic": None,
        "input_partition": None,
        "input_offset": None,
    }


def series_state_name(state: SeriesState) -> tuple[str, str | None]:
    """The status ``state`` of a series and a message saying why or what it waits for."""
    latest = state.latest
    if state.ended is None:
        return "acquiring", None
    if latest is None:
        return "waiting", "waiting for tilts to be processed"
    if state.dirty_since_ms is not None:
        return "waiting", f"tilts changed after version {latest.version}; waiting for them"
    if latest.kind == "failed":
        return "failed", f"fewer than the minimum usable tilts (version {latest.version})"
    failed = state.reconstruct_failed
    if failed is not None and failed.version == latest.version:
        return "failed", failed.error
    if state.denoised is not None and state.denoised.version == latest.version:
        return "denoised", None
    if state.reconstructed is not None and state.reconstructed.version == latest.version:
        return "reconstructed", None
    return "requested", None


def status_signature(state: SeriesState, counts: TiltCounts) -> str:
    """A digest of what the ``TiltSeriesStatus`` of the series says now, without building it.

    It covers every field of :func:`status_value`'s value but the metadata, from the numbers they are
    made of (milliseconds, not datetimes), so the aggregator can tell after every event whether the
    status changed and build the value only when it is sent.
    """
    name, message = series_state_name(state)
    latest, ended = state.latest, state.ended
    parts = (
        name,
        message,
        (ended.expected_tilt_count, ended.ended_at_ms) if ended else None,
        (counts.acquired, counts.corrected, counts.ctf, counts.failed),
        (counts.first_acquired_ms, counts.last_acquired_ms),
        (latest.excluded_tilts, latest.version, latest.kind, latest.request_id, latest.decided_at_ms)
        if latest
        else None,
        _result_part(state.reconstructed),
        _result_part(state.denoised),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _result_part(result: Any) -> tuple[object, ...] | None:
    return None if result is None else (result.at_ms, result.root, result.path)


def status_value(state: SeriesState, counts: TiltCounts, now_ms: int) -> tuple[str, dict[str, Any]]:
    """The ``TiltSeriesStatus`` value of the series now, and its :func:`status_signature`."""
    name, message = series_state_name(state)
    latest = state.latest
    body: dict[str, Any] = {
        "state": name,
        "expected_tilts": state.ended.expected_tilt_count if state.ended else None,
        "acquired_tilts": counts.acquired,
        "corrected_tilts": counts.corrected,
        "ctf_tilts": counts.ctf,
        "failed_tilts": counts.failed,
        "excluded_tilts": latest.excluded_tilts if latest else 0,
        "latest_version": latest.version if latest else 0,
        "latest_request_id": latest.request_id if latest and latest.kind == "requested" else None,
        "first_tilt_at": from_ms(counts.first_acquired_ms),
        "last_tilt_at": from_ms(counts.last_acquired_ms),
        "acquisition_ended_at": from_ms(state.ended.ended_at_ms) if state.ended else None,
        "requested_at": from_ms(latest.decided_at_ms) if latest else None,
        "reconstructed_at": from_ms(state.reconstructed.at_ms) if state.reconstructed else None,
        "denoised_at": from_ms(state.denoised.at_ms) if state.denoised else None,
        "tomogram": _path(state.reconstructed),
        "denoised_tomogram": _path(state.denoised),
        "message": message,
    }
    signature = status_signature(state, counts)
    return signature, {"metadata": _metadata(state, "TiltSeriesStatus", (signature,), now_ms), **body}


def _path(result: Any) -> dict[str, str] | None:
    if result is None or result.root is None:
        return None
    return {"root": result.root, "path": result.path}
