"""Which movie stands for each tilt angle, whether it is settled, and whether it is used (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from tiltstream.streams.aggregator.darkness import dark_flags
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import Acquired, CtfFit, Failure, SeriesState

__all__ = [
    "EXCLUSION_REASONS",
    "TiltChoice",
    "choose_tilt",
    "group_retakes",
    "marked",
    "select_tilts",
    "signature_part",
]

#: Why a tilt is left out of a reconstruction.
EXCLUSION_REASONS = ("failed", "dark", "missing", "ctf-fit", "motion")


@dataclass(frozen=True)
class TiltChoice:
    """One tilt angle of a series as it would go into a reconstruction command.

    ``settled`` is False while the tilt still waits for processing; such a tilt is reported
    ``missing`` when a command is emitted anyway (grace period over).
    """

    movie: Acquired
    settled: bool
    micrograph: tuple[str, str] | None  # (root, path)
    ctf: CtfFit | None
    excluded: bool
    reason: str | None
    retaken: tuple[str, ...]  # movie ids this one superseded
    #: the even- and odd-frame sums of the micrograph, ((root, path), (root, path)); None: not made
    halves: tuple[tuple[str, str], tuple[str, str]] | None = None


def group_retakes(movies: list[Acquired], tolerance_degrees: float) -> list[list[Acquired]]:
    """Group movies by tilt angle: sorted by angle, a group spans at most ``tolerance_degrees``."""
    groups: list[list[Acquired]] = []
    for movie in sorted(movies, key=lambda m: (m.tilt_angle_degrees, m.movie_id)):
        if groups and movie.tilt_angle_degrees - groups[-1][0].tilt_angle_degrees <= tolerance_degrees:
            groups[-1].append(movie)
        else:
            groups.append([movie])
    return groups


def _newest(group: list[Acquired]) -> Acquired:
    return max(group, key=lambda m: (m.acquired_at_ms, m.acquisition_order, m.movie_id))


def _failure(state: SeriesState, movie_id: str, ctf: bool) -> Failure | None:
    found = [f for f in state.failures.values() if f.movie_id == movie_id and (f.stage == "ctf") == ctf]
    return max(found, key=lambda f: (f.attempt, f.event_id)) if found else None


def choose_tilt(state: SeriesState, movie: Acquired, dark: bool, rules: Rules) -> TiltChoice:
    """The choice for ``movie`` standing for its angle (``dark``: by dose or image, see :mod:`.darkness`)."""
    corrected = state.corrected.get(movie.movie_id)
    micrograph = (corrected.micrograph_root, corrected.micrograph_path) if corrected else None
    ctf = state.ctf.get(movie.movie_id)

    halves = None
    if corrected is not None and corrected.micrograph_even and corrected.micrograph_odd:
        even, odd = corrected.micrograph_even, corrected.micrograph_odd
        halves = ((even[0], even[1]), (odd[0], odd[1]))

    def choice(settled: bool, reason: str | None) -> TiltChoice:
        return TiltChoice(movie, settled, micrograph, ctf, reason is not None, reason, (), halves)

    failed = _failure(state, movie.movie_id, ctf=False)
    if failed is not None and (corrected is None or failed.attempt > corrected.attempt):
        reason = "dark" if dark or "dark" in failed.error_class.lower() else "failed"
        return TiltChoice(movie, True, None, None, True, reason, ())
    if corrected is None:
        return choice(False, None)
    ctf_failed = _failure(state, movie.movie_id, ctf=True)
    if ctf_failed is not None and ctf is not None and ctf_failed.attempt <= ctf.attempt:
        ctf_failed = None
    if ctf_failed is not None:
        ctf = None  # the failure is newer: the tilt has no CTF estimate
    settled = ctf is not None or ctf_failed is not None or not rules.wait_for_ctf
    if dark:
        return choice(settled, "dark")
    if corrected.total_motion_angstroms > rules.max_total_motion_angstroms:
        return choice(settled, "motion")
    if ctf_failed is not None:
        return choice(True, "failed")
    if ctf is not None and ctf.fit_resolution_angstroms > rules.max_ctf_fit_resolution_angstroms:
        return choice(True, "ctf-fit")
    return choice(settled, None)


def select_tilts(state: SeriesState, rules: Rules) -> list[TiltChoice]:
    """One :class:`TiltChoice` per distinct tilt angle, in acquisition order.

    Retakes: of the movies within ``rules.angle_tolerance_degrees`` of each other, the newest
    (by acquisition time, then acquisition order, then movie id) stands for the angle.
    """
    groups = group_retakes(list(state.movies.values()), rules.angle_tolerance_degrees)
    winners = [(_newest(group), group) for group in groups]
    dark = dark_flags(state, [movie for movie, _ in winners], rules)
    chosen = []
    for movie, group in winners:
        choice = choose_tilt(state, movie, dark[movie.movie_id], rules)
        retaken = tuple(sorted(m.movie_id for m in group if m.movie_id != movie.movie_id))
        chosen.append(replace(choice, retaken=retaken))
    return sorted(chosen, key=lambda c: (c.movie.acquisition_order, c.movie.tilt_angle_degrees))


def marked(choice: TiltChoice) -> tuple[bool, str | None]:
    """The exclusion of ``choice`` as a command marks it: an unsettled tilt is ``missing``."""
    return (True, "missing") if not choice.settled else (choice.excluded, choice.reason)


def signature_part(choice: TiltChoice) -> str:
    """What ``choice`` contributes to a series' content signature (JSON of what a command says of it)."""
    excluded, why = marked(choice)
    payload = [choice.movie.movie_id, excluded, why, choice.micrograph]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
