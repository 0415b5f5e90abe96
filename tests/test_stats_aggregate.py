"""The statistics' pure counting and rendering, on known per-series facts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta

from rich.console import Console

from tiltstream.stats.aggregate import summarise
from tiltstream.stats.queries import SeriesFacts
from tiltstream.stats.render import stats_json, stats_tables, tomograms_per_day_svg, waiting

T0 = datetime(2026, 3, 1, 10, 0, 0)


def _facts(
    microscope: str, session: str, kind: str, day: int, wait_s: float | None, **changes: object
) -> SeriesFacts:
    values: dict[str, object] = {
        "microscope": microscope,
        "session": session,
        "session_type": kind,
        "day": date(2026, 3, day),
        "movies": 41,
        "tomogram": wait_s is not None,
        "denoised": wait_s is not None,
        "failed_stages": (),
        "last_tilt_at": T0,
        "first_tomogram_at": None if wait_s is None else T0 + timedelta(seconds=wait_s),
    }
    values.update(changes)
    return SeriesFacts(**values)  # type: ignore[arg-type]


FACTS = [
    _facts("m02", "bi1-1", "user", 1, 60),
    _facts("m02", "bi1-1", "user", 1, 120, denoised=False),
    _facts("m02", "bi1-1", "user", 2, 300, failed_stages=("ctf",)),
    _facts("m02", "cm2-1", "commissioning", 2, None, movies=7, failed_stages=("motioncorr", "reconstruct")),
    _facts("m03", "bi3-1", "user", 1, 90, last_tilt_at=None),  # no last tilt: no wait counted
]


def test_counts_and_medians_by_each_grouping() -> None:
    stats = summarise(FACTS)
    total = {row.microscope: row for row in stats.total}
    assert (total["m02"].tilt_series, total["m02"].movies, total["m02"].tomograms, total["m02"].denoised) == (
        4,
        41 * 3 + 7,
        3,
        2,
    )
    assert total["m02"].failures == {"ctf": 1, "motioncorr": 1, "reconstruct": 1}
    assert total["m02"].median_seconds_to_tomogram == 120.0
    assert total["m03"].median_seconds_to_tomogram is None
    days = {(r.microscope, r.key): (r.tomograms, r.median_seconds_to_tomogram) for r in stats.by["day"]}
    assert days == {
        ("m02", "2026-03-01"): (2, 90.0),
        ("m02", "2026-03-02"): (1, 300.0),
        ("m03", "2026-03-01"): (1, None),
    }
    kinds = {(r.microscope, r.key): r.tilt_series for r in stats.by["session_type"]}
    assert kinds == {("m02", "commissioning"): 1, ("m02", "user"): 3, ("m03", "user"): 1}
    assert [r.key for r in stats.by["session"]] == ["bi1-1", "cm2-1", "bi3-1"]


def test_nothing_gives_empty_tables() -> None:
    stats = summarise([])
    assert stats.total == []
    assert all(rows == [] for rows in stats.by.values())
    assert "no tilt series" in tomograms_per_day_svg(stats.by["day"])


def test_json_tables_and_plot() -> None:
    stats = summarise(FACTS)
    found = json.loads(json.dumps(stats_json(stats, since=date(2026, 3, 1), microscope=None)))
    assert found["query"] == {"since": "2026-03-01", "microscope": None}
    assert [r["tilt_series"] for r in found["total"]] == [4, 1]
    console = Console(record=True, width=200)
    for table in stats_tables(stats):
        console.print(table)
    text = console.export_text()
    assert "per microscope and session type" in text
    assert "commissioning" in text
    assert "2:00" in text  # m02's median, 120 s
    assert waiting(stats.total[1]) == "-"
    svg = tomograms_per_day_svg(stats.by["day"])
    root = ET.fromstring(svg.encode())
    assert root.tag.endswith("svg")
    texts = {"".join(node.itertext()).strip() for node in root.iter() if node.tag.endswith("text")}
    assert {"2026-03-01", "2026-03-02", "m02", "m03", "tomograms"} <= texts
