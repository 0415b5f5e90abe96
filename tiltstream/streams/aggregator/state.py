"""The aggregator's state of one tilt series: the facts it has seen, as plain immutable values.

A :class:`SeriesState` is what the Faust table holds per ``tilt_series_id``. It is built only by
:func:`~tiltstream.streams.aggregator.fold.apply_event` (facts in) and
:func:`~tiltstream.streams.aggregator.decide.decide` (decisions out); both are pure. Times are
milliseconds since the epoch (UTC) so the state serialises to JSON or msgpack without loss.

Every fact is kept per ``movie_id`` and merged by a total order (attempt, then event id), so the
state after a set of events does not depend on the order they arrived in or on duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any

__all__ = [
    "INACTIVITY",
    "Acquired",
    "Corrected",
    "CtfFit",
    "DecisionRecord",
    "Ended",
    "Failure",
    "SeriesState",
    "TomogramResult",
    "request_id_for",
    "state_from_json",
    "state_from_plain",
    "state_to_json",
    "state_to_plain",
    "version_from_request_id",
]


@dataclass(frozen=True)
class Acquired:
    """A movie of the series (from ``MovieAcquired``)."""

    movie_id: str
    event_id: str
    acquisition_order: int
    tilt_angle_degrees: float
    acquired_at_ms: int
    dose_e_per_angstrom2: float
    prior_dose_e_per_angstrom2: float
    tilt_axis_angle_degrees: float
    pixel_size_angstroms: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float


@dataclass(frozen=True)
class Corrected:
    """A motion-corrected micrograph (from ``MovieMotionCorrected``)."""

    movie_id: str
    event_id: str
    attempt: int
    micrograph_root: str
    micrograph_path: str
    pixel_size_angstroms: float
    total_motion_angstroms: float
    #: the plain sum's mean counts per pixel per second (None: not measured, e.g. an older event)
    mean_counts_per_pixel_per_second: float | None = None
    #: the even- and odd-frame sums, (root, path) each as plain lists; None: not made
    micrograph_even: list[str] | None = None
    micrograph_odd: list[str] | None = None


@dataclass(frozen=True)
class CtfFit:
    """A CTF estimate of a micrograph (from ``CtfEstimated``)."""

    movie_id: str
    event_id: str
    attempt: int
    defocus_u_angstroms: float
    defocus_v_angstroms: float
    astigmatism_angle_degrees: float
    fit_resolution_angstroms: float


@dataclass(frozen=True)
class Failure:
    """A terminal failure of a per-tilt stage (from ``ProcessingFailed`` with a ``movie_id``)."""

    movie_id: str
    event_id: str
    attempt: int
    stage: str
    error_class: str


#: :attr:`Ended.reason` of an end the aggregator assumed after inactivity (none was announced).
INACTIVITY = "inactivity"


@dataclass(frozen=True)
class Ended:
    """Acquisition of the series ended (from ``TiltSeriesAcquisitionEnded``).

    ``seen_at_ms`` is when the aggregator first saw it: the grace period counts from there, so a
    replay of old events does not find every grace period long expired.
    """

    event_id: str
    ended_at_ms: int
    expected_tilt_count: int
    acquired_tilt_count: int
    reason: str
    seen_at_ms: int


@dataclass(frozen=True)
class DecisionRecord:
    """A decision taken for the series: a reconstruction command, or failure for too few tilts."""

    version: int
    request_id: str
    kind: str  # 'requested' or 'failed'
    reason: str
    signature: str
    decided_at_ms: int
    excluded_tilts: int
    missing_tilts: int


@dataclass(frozen=True)
class TomogramResult:
    """The newest downstream result: a tomogram, its denoised version, or a failure of either."""

    version: int
    event_id: str
    at_ms: int
    root: str | None = None
    path: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SeriesState:
    """Everything the aggregator knows about one tilt series."""

    tilt_series_id: str
    microscope: str = ""
    session_id: str = ""
    movies: dict[str, Acquired] = field(default_factory=dict)
    corrected: dict[str, Corrected] = field(default_factory=dict)
    ctf: dict[str, CtfFit] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)  # key: '<stage>/<movie_id>'
    ended: Ended | None = None
    latest: DecisionRecord | None = None
    dirty_since_ms: int | None = None
    reconstructed: TomogramResult | None = None
    denoised: TomogramResult | None = None
    reconstruct_failed: TomogramResult | None = None
    status_signature: str = ""
    #: wall-clock ms when the newest movie new to the series was seen (the inactivity clock)
    last_tilt_seen_ms: int | None = None

    def with_(self, **changes: Any) -> SeriesState:
        """A copy with ``changes`` (a shorthand for :func:`dataclasses.replace`)."""
        return replace(self, **changes)


_FACT_TYPES: dict[str, type[Any]] = {
    "movies": Acquired,
    "corrected": Corrected,
    "ctf": CtfFit,
    "failures": Failure,
    "ended": Ended,
    "latest": DecisionRecord,
    "reconstructed": TomogramResult,
    "denoised": TomogramResult,
    "reconstruct_failed": TomogramResult,
}


_STATE_FIELDS = tuple(f.name for f in fields(SeriesState))


#: Each fact's fields in declaration order, read in one call.
_GETTERS: dict[type[Any], attrgetter[Any]] = {
    cls: attrgetter(*(f.name for f in fields(cls))) for cls in set(_FACT_TYPES.values())
}


def _row(fact: Any) -> list[Any] | None:
    return None if fact is None else list(_GETTERS[type(fact)](fact))


def state_to_plain(state: SeriesState) -> dict[str, Any]:
    """The state as plain values (for JSON or msgpack), each fact a list of its fields in order.

    Adding a field at the end of a fact with a default keeps old values readable.
    """
    out: dict[str, Any] = {}
    for f in _STATE_FIELDS:
        value = getattr(state, f)
        if isinstance(value, dict):
            out[f] = {k: _row(v) for k, v in value.items()}
        elif f in _FACT_TYPES:
            out[f] = _row(value)
        else:
            out[f] = value
    return out


def state_from_plain(raw: dict[str, Any]) -> SeriesState:
    """The inverse of :func:`state_to_plain`."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        cls = _FACT_TYPES.get(name)
        if cls is None or value is None:
            values[name] = value
        elif isinstance(value, dict):
            values[name] = {k: cls(*row) for k, row in value.items()}
        else:
            values[name] = cls(*value)
    return SeriesState(**values)


def state_to_json(state: SeriesState) -> bytes:
    """The state as compact JSON (:func:`state_to_plain`)."""
    return json.dumps(state_to_plain(state), separators=(",", ":")).encode()


def state_from_json(data: bytes) -> SeriesState:
    """The inverse of :func:`state_to_json`."""
    return state_from_plain(json.loads(data))


def request_id_for(tilt_series_id: str, version: int) -> str:
    """The deterministic id of version ``version`` of a series' reconstruction command."""
    return f"{tilt_series_id}:v{version}"


def version_from_request_id(request_id: str) -> int | None:
    """The version in a :func:`request_id_for` id, or None for an id of another form."""
    _, sep, tail = request_id.rpartition(":v")
    return int(tail) if sep and tail.isdigit() else None
