"""Counting :class:`~tiltstream.stats.queries.SeriesFacts` into the tables of the usage statistics.

A pure function (:func:`summarise`): the same facts give the same tables, whichever database they came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import median

from tiltstream.stats.queries import SeriesFacts

__all__ = ["GROUPINGS", "StatsRow", "UsageStats", "summarise"]


@dataclass(frozen=True)
class StatsRow:
    """The counts of one group of tilt series.

    Attributes
    ----------
    microscope, key
        The group: a microscope and a day (ISO), a session type, or a session.
    tilt_series, movies, tomograms, denoised
        Series collected, their movies, series with a tomogram, series with a denoised tomogram.
    failures
        Series with a failed program, by stage.
    median_seconds_to_tomogram
        Median over series with both times of (first tomogram minus last tilt); ``None`` when there is none.
    """

    microscope: str
    key: str
    tilt_series: int
    movies: int
    tomograms: int
    denoised: int
    failures: dict[str, int] = field(default_factory=dict)
    median_seconds_to_tomogram: float | None = None


@dataclass(frozen=True)
class UsageStats:
    """Rows per grouping of :data:`GROUPINGS` (``day``, ``session_type``, ``session``), and per microscope."""

    by: dict[str, list[StatsRow]]
    total: list[StatsRow]


#: How series are grouped under each microscope.
GROUPINGS: dict[str, Callable[[SeriesFacts], str]] = {
    "day": lambda f: f.day.isoformat() if f.day else "unknown",
    "session_type": lambda f: f.session_type,
    "session": lambda f: f.session,
}


def _seconds_to_tomogram(facts: SeriesFacts) -> float | None:
    if facts.last_tilt_at is None or facts.first_tomogram_at is None:
        return None
    return (facts.first_tomogram_at - facts.last_tilt_at).total_seconds()


def _row(microscope: str, key: str, group: list[SeriesFacts]) -> StatsRow:
    failures: dict[str, int] = {}
    for facts in group:
        for stage in facts.failed_stages:
            failures[stage] = failures.get(stage, 0) + 1
    waits = [w for f in group if (w := _seconds_to_tomogram(f)) is not None]
    return StatsRow(
        microscope=microscope,
        key=key,
        tilt_series=len(group),
        movies=sum(f.movies for f in group),
        tomograms=sum(f.tomogram for f in group),
        denoised=sum(f.denoised for f in group),
        failures=dict(sorted(failures.items())),
        median_seconds_to_tomogram=float(median(waits)) if waits else None,
    )


def _grouped(facts: list[SeriesFacts], key: Callable[[SeriesFacts], str]) -> list[StatsRow]:
    groups: dict[tuple[str, str], list[SeriesFacts]] = {}
    for item in facts:
        groups.setdefault((item.microscope, key(item)), []).append(item)
    return [_row(microscope, name, group) for (microscope, name), group in sorted(groups.items())]


def summarise(facts: Iterable[SeriesFacts]) -> UsageStats:
    """Count ``facts`` per microscope and day, session type and session, and per microscope overall."""
    listed = list(facts)
    return UsageStats(
        by={name: _grouped(listed, key) for name, key in GROUPINGS.items()},
        total=_grouped(listed, lambda _: "all"),
    )
