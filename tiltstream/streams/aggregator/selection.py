"""The tilts of a series as :func:`~tiltstream.streams.aggregator.tilts.select_tilts` chooses them, kept
up to date one event at a time.

A :class:`TiltSelection` lives beside a series' decoded entry in the worker's memory (it is not stored:
it is rebuilt from the state after every assignment). :meth:`TiltSelection.update` is told which movie
an event concerned and re-chooses only that tilt, so the work per event does not grow with the number
of tilts. It recomputes everything (as :func:`select_tilts` does) only where one event can change many
tilts: a movie near but not at a known angle or a newer attempt of a movie (the angle groups change), a
tilt failure (rare), or a
state it has not seen the ancestors of. A new movie at a new angle, or a retake at exactly a known
movie's angle (as SerialEM retakes), is added in place; the median dose moves with it, and only the
tilts whose dose the dark threshold crossed are chosen again. A tilt's brightness (image darkness,
:mod:`.darkness`) arriving, changing or leaving chooses again only the tilts within
``rules.dark_neighbours`` places of it by angle: the only ones whose neighbours it can be.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, replace

from tiltstream.streams.aggregator.darkness import (
    BrightRow,
    brightness_row,
    dark_flags,
    dose_dark,
    dose_known,
    image_dark,
)
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import Acquired, SeriesState
from tiltstream.streams.aggregator.tilts import TiltChoice, choose_tilt, select_tilts, signature_part

__all__ = ["TiltCounts", "TiltSelection"]


@dataclass(frozen=True)
class TiltCounts:
    """What the status of a series counts of its tilts (and the span of its acquisition times)."""

    acquired: int
    corrected: int
    ctf: int
    failed: int
    unsettled: int
    first_acquired_ms: int | None
    last_acquired_ms: int | None

    @classmethod
    def of(cls, tilts: list[TiltChoice], movies: list[Acquired]) -> TiltCounts:
        """The counts of ``tilts`` (one per angle), and the span of ``movies`` (every movie)."""
        times = [m.acquired_at_ms for m in movies]
        return cls(
            acquired=len(tilts),
            corrected=sum(t.micrograph is not None for t in tilts),
            ctf=sum(t.ctf is not None for t in tilts),
            failed=sum(t.reason == "failed" for t in tilts),
            unsettled=sum(not t.settled for t in tilts),
            first_acquired_ms=min(times) if times else None,
            last_acquired_ms=max(times) if times else None,
        )


def _order(choice: TiltChoice) -> tuple[int, float, str]:
    return (choice.movie.acquisition_order, choice.movie.tilt_angle_degrees, choice.movie.movie_id)


def _count(choice: TiltChoice) -> tuple[int, int, int, int]:
    return (
        choice.micrograph is not None,
        choice.ctf is not None,
        choice.reason == "failed",
        not choice.settled,
    )


class TiltSelection:
    """The :class:`TiltChoice` of every tilt angle of one series, its counts and signature parts."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._seen: SeriesState | None = None
        self.by_movie: dict[str, TiltChoice] = {}  # the movie standing for each angle -> its choice
        self._order: list[tuple[int, float, str]] = []  # sorted like select_tilts' result
        self._parts: list[str] = []  # signature part of each, in that order
        self._angles: list[tuple[float, str]] = []  # (angle, movie id) of every movie, sorted
        self._winner_of: dict[str, str] = {}  # every movie -> the movie standing for its angle
        self._doses: list[tuple[float, str]] = []  # of every chosen movie whose dose is known, sorted
        self._bright: list[BrightRow] = []  # of every chosen movie with a brightness, sorted
        self._bright_of: dict[str, BrightRow] = {}  # those movies -> their row
        self._dark_of: dict[str, bool] = {}  # every chosen movie -> whether it was chosen as dark
        self._counts = [0, 0, 0, 0]
        self._span: tuple[int, int] | None = None

    def tilts(self) -> list[TiltChoice]:
        """One choice per tilt angle, in acquisition order (what :func:`select_tilts` returns)."""
        return [self.by_movie[movie_id] for _, _, movie_id in self._order]

    def counts(self) -> TiltCounts:
        """The counts of the current choices."""
        corrected, ctf, failed, unsettled = self._counts
        first, last = self._span if self._span else (None, None)
        return TiltCounts(len(self.by_movie), corrected, ctf, failed, unsettled, first, last)

    def signature_text(self) -> str:
        """The text :func:`~tiltstream.streams.aggregator.outputs.content_signature` digests."""
        return "[" + ",".join(self._parts) + "]"

    def signature(self) -> str:
        """The content signature of the current choices."""
        return hashlib.sha256(self.signature_text().encode()).hexdigest()[:32]

    def update(self, state: SeriesState, movie_id: str | None) -> None:
        """Bring the choices to ``state``, which differs from the last one seen in ``movie_id`` at most."""
        seen = self._seen
        self._seen = state
        if seen is None or state.failures is not seen.failures or movie_id is None:
            if seen is None or not _same_tilt_facts(seen, state):
                self._rebuild(state)
            return
        if state.movies is not seen.movies:
            others_same = state.corrected is seen.corrected and state.ctf is seen.ctf
            if not (others_same and self._add_movie(state, movie_id)):
                self._rebuild(state)
            return
        if movie_id in self.by_movie and (state.corrected is not seen.corrected or state.ctf is not seen.ctf):
            neighbours = (
                self._set_brightness(state, movie_id) if state.corrected is not seen.corrected else set()
            )
            self._rechoose(state, movie_id)
            self._rechoose_if_darkness_changed(state, neighbours - {movie_id})

    def _rebuild(self, state: SeriesState) -> None:
        chosen = select_tilts(state, self.rules)
        self.by_movie = {c.movie.movie_id: c for c in chosen}
        self._order = [_order(c) for c in chosen]
        self._parts = [signature_part(c) for c in chosen]
        self._angles = sorted((m.tilt_angle_degrees, m.movie_id) for m in state.movies.values())
        self._winner_of = {
            member: c.movie.movie_id for c in chosen for member in (c.movie.movie_id, *c.retaken)
        }
        self._doses = sorted(
            (c.movie.dose_e_per_angstrom2, c.movie.movie_id) for c in chosen if dose_known(c.movie)
        )
        measured = (brightness_row(c.movie, state.corrected.get(c.movie.movie_id)) for c in chosen)
        self._bright = sorted(row for row in measured if row is not None)
        self._bright_of = {row[1]: row for row in self._bright}
        self._dark_of = dark_flags(state, [c.movie for c in chosen], self.rules)
        self._counts = [sum(column) for column in zip(*map(_count, chosen), strict=True)] or [0, 0, 0, 0]
        times = [m.acquired_at_ms for m in state.movies.values()]
        self._span = (min(times), max(times)) if times else None

    def _dark_threshold(self) -> float:
        doses = self._doses
        if not doses:
            return 0.0
        middle = len(doses) // 2
        median = doses[middle][0] if len(doses) % 2 else (doses[middle - 1][0] + doses[middle][0]) / 2
        return self.rules.dark_dose_fraction * median

    def _add_movie(self, state: SeriesState, movie_id: str) -> bool:
        """Add a movie new to the series, at an angle of its own or at exactly a known movie's angle.

        False (nothing changed) when it is neither: the angle groups may then change in other ways.
        """
        movie = state.movies.get(movie_id)
        if movie is None or movie_id in self._winner_of or len(state.movies) != len(self._angles) + 1:
            return False
        angle = movie.tilt_angle_degrees
        at = bisect.bisect_left(self._angles, (angle, movie_id))
        tolerance = self.rules.angle_tolerance_degrees
        left = self._angles[at - 1] if at > 0 else None
        right = self._angles[at] if at < len(self._angles) else None
        same = left if left and left[0] == angle else right if right and right[0] == angle else None
        if same is None and (
            (left and angle - left[0] <= tolerance) or (right and right[0] - angle <= tolerance)
        ):
            return False  # near a known angle, not at it: the groups change
        before = self._dark_threshold()
        self._angles.insert(at, (angle, movie_id))
        if same is None:
            self._winner_of[movie_id] = movie_id
            self._add_dose(movie)
            self._insert(TiltChoice(movie, False, None, None, False, None, ()))
            stands, neighbours = movie_id, self._set_brightness(state, movie_id)
        else:
            stands, neighbours = self._retake(state, movie, self._winner_of[same[1]])
        after = self._dark_threshold()
        low, high = min(before, after), max(before, after)
        start = bisect.bisect_left(self._doses, (low, ""))
        neighbours |= {m for dose, m in self._doses[start:] if dose <= high}
        self._rechoose(state, stands)
        self._rechoose_if_darkness_changed(state, neighbours - {stands})
        span = self._span
        when = movie.acquired_at_ms
        self._span = (min(span[0], when), max(span[1], when)) if span else (when, when)
        return True

    def _retake(self, state: SeriesState, movie: Acquired, winner_id: str) -> tuple[str, set[str]]:
        """Add ``movie`` to the angle of ``winner_id``; the movie that stands for the angle now, and the
        chosen movies whose neighbours' brightness changed."""
        old = self.by_movie[winner_id]
        members = [state.movies[m] for m in (winner_id, *old.retaken)] + [movie]
        newest = max(members, key=lambda m: (m.acquired_at_ms, m.acquisition_order, m.movie_id))
        retaken = tuple(sorted(m.movie_id for m in members if m.movie_id != newest.movie_id))
        for member in members:
            self._winner_of[member.movie_id] = newest.movie_id
        if newest.movie_id == winner_id:
            self._replace(winner_id, replace(old, retaken=retaken))
            return winner_id, set()
        self._remove(old)
        if dose_known(old.movie):
            self._doses.remove((old.movie.dose_e_per_angstrom2, winner_id))
        self._add_dose(newest)
        self._insert(TiltChoice(newest, False, None, None, False, None, retaken))
        gone = self._set_brightness(state, winner_id, leaving=True)
        return newest.movie_id, gone | self._set_brightness(state, newest.movie_id)

    def _add_dose(self, movie: Acquired) -> None:
        if dose_known(movie):
            bisect.insort(self._doses, (movie.dose_e_per_angstrom2, movie.movie_id))

    def _set_brightness(self, state: SeriesState, movie_id: str, *, leaving: bool = False) -> set[str]:
        """Bring ``movie_id``'s brightness row to the state (``leaving``: the movie no longer stands for
        its angle, take its row out); the chosen movies with a row whose neighbours may have changed."""
        old = self._bright_of.pop(movie_id, None)
        at = None
        if old is not None:
            at = bisect.bisect_left(self._bright, old)
            del self._bright[at]
        row = None if leaving else brightness_row(state.movies[movie_id], state.corrected.get(movie_id))
        if row is not None:
            at = bisect.bisect_left(self._bright, row)
            self._bright.insert(at, row)
            self._bright_of[movie_id] = row
        if at is None:
            return set()
        reach = self.rules.dark_neighbours
        return {m for _, m, _ in self._bright[max(0, at - reach) : at + reach + 1]}

    def _insert(self, choice: TiltChoice) -> None:
        key = _order(choice)
        at = bisect.bisect_left(self._order, key)
        self._order.insert(at, key)
        self._parts.insert(at, signature_part(choice))
        self.by_movie[choice.movie.movie_id] = choice
        self._add_counts(choice, 1)

    def _dark(self, movie: Acquired) -> bool:
        row = self._bright_of.get(movie.movie_id)
        return dose_dark(movie, self._dark_threshold()) or (
            row is not None and image_dark(self._bright, bisect.bisect_left(self._bright, row), self.rules)
        )

    def _rechoose(self, state: SeriesState, movie_id: str) -> None:
        """Choose again the tilt of ``movie_id``, whose own facts changed."""
        old = self.by_movie[movie_id]
        movie = state.movies[movie_id]
        dark = self._dark_of[movie_id] = self._dark(movie)
        self._replace(movie_id, replace(choose_tilt(state, movie, dark, self.rules), retaken=old.retaken))

    def _rechoose_if_darkness_changed(self, state: SeriesState, movie_ids: set[str]) -> None:
        """Choose again those of ``movie_ids`` (facts unchanged) that became dark or stopped being dark."""
        for movie_id in sorted(movie_ids):
            if self._dark(state.movies[movie_id]) != self._dark_of[movie_id]:
                self._rechoose(state, movie_id)

    def _replace(self, movie_id: str, new: TiltChoice) -> None:
        old = self.by_movie[movie_id]
        self._add_counts(old, -1)
        self._add_counts(new, 1)
        self.by_movie[movie_id] = new
        self._parts[bisect.bisect_left(self._order, _order(old))] = signature_part(new)

    def _remove(self, old: TiltChoice) -> None:
        at = bisect.bisect_left(self._order, _order(old))
        del self._order[at], self._parts[at], self.by_movie[old.movie.movie_id]
        self._dark_of.pop(old.movie.movie_id, None)
        self._add_counts(old, -1)

    def _add_counts(self, choice: TiltChoice, sign: int) -> None:
        for i, value in enumerate(_count(choice)):
            self._counts[i] += sign * value


def _same_tilt_facts(old: SeriesState, new: SeriesState) -> bool:
    """Whether the facts the tilts are chosen from are the very same objects in both states."""
    return (
        old.movies is new.movies
        and old.corrected is new.corrected
        and old.ctf is new.ctf
        and old.failures is new.failures
    )
