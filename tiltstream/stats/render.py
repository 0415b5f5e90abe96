"""The usage statistics as JSON, as rich tables for the terminal, and as an SVG plot of tomograms per day."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from rich.table import Table

from tiltstream.stats.aggregate import StatsRow, UsageStats

__all__ = ["TITLES", "stats_json", "stats_tables", "tomograms_per_day_svg", "waiting"]

#: The heading of each grouping.
TITLES: dict[str, str] = {
    "total": "per microscope",
    "day": "per microscope and day",
    "session_type": "per microscope and session type",
    "session": "per microscope and session",
}


def stats_json(stats: UsageStats, **query: object) -> dict[str, Any]:
    """``stats`` as one JSON-ready object: the query it answers, then every grouping's rows."""
    return {
        "query": {key: None if value is None else str(value) for key, value in query.items()},
        "total": [asdict(row) for row in stats.total],
        **{name: [asdict(row) for row in rows] for name, rows in stats.by.items()},
    }


def waiting(row: StatsRow) -> str:
    """The median time from last tilt to tomogram as ``m:ss`` (``-`` when none)."""
    seconds = row.median_seconds_to_tomogram
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def _failures(row: StatsRow) -> str:
    return ", ".join(f"{stage} {count}" for stage, count in row.failures.items()) or "-"


def stats_tables(stats: UsageStats) -> list[Table]:
    """One rich table per grouping (per microscope first)."""
    tables = []
    for name, rows in (("total", stats.total), *stats.by.items()):
        key = {"total": "", "day": "day", "session_type": "session type", "session": "session"}[name]
        columns = ["microscope", *([key] if key else [])]
        table = Table(*columns)
        for count in ("tilt series", "movies", "tomograms", "denoised"):
            table.add_column(count, justify="right")
        table.add_column("failed (by stage)")
        table.add_column("median last tilt → tomogram", justify="right")
        table.title = TITLES[name]
        for row in rows:
            head = [row.microscope, *([row.key] if key else [])]
            counts = (row.tilt_series, row.movies, row.tomograms, row.denoised)
            table.add_row(*head, *(str(c) for c in counts), _failures(row), waiting(row))
        tables.append(table)
    return tables


def tomograms_per_day_svg(rows: list[StatsRow], title: str = "tomograms reconstructed per day") -> str:
    """A bar chart (SVG text) of tomograms per day, one colour per microscope (``rows``: the ``day`` rows)."""
    days = sorted({row.key for row in rows})
    microscopes = sorted({row.microscope for row in rows})
    figure = Figure(figsize=(7, 3.2), dpi=100)
    axes = figure.subplots()
    width = 0.8 / max(len(microscopes), 1)
    for index, microscope in enumerate(microscopes):
        counts = {row.key: row.tomograms for row in rows if row.microscope == microscope}
        positions = [d + (index - (len(microscopes) - 1) / 2) * width for d in range(len(days))]
        axes.bar(positions, [counts.get(day, 0) for day in days], width, label=microscope)
    axes.set_xticks(range(len(days)), days, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("tomograms")
    axes.set_title(title, fontsize=10)
    if microscopes:
        axes.legend(fontsize=8)
    else:
        axes.text(0.5, 0.5, "no tilt series", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tiltstream"}):  # text stays text
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
