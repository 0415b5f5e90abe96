"""What the demo shows a person: live progress per tilt series and the closing summary table."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table

from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.reader import ReadEvent, StartAt, read_events
from tiltstream.streams.serde import AvroSerde

__all__ = ["SeriesSummary", "progress_table", "short_name", "summarise_session", "summary_table"]

TERMINAL_STATES = frozenset({"denoised", "failed"})


def progress_table(statuses: dict[str, dict[str, Any]]) -> Table:
    """One row per series: state and tilt counts, from the ``tiltseries.status`` topic."""
    table = Table("series", "state", "acquired", "corrected", "CTF", "failed", "excluded", "version")
    table.title = "tilt series (live)"
    colours = {"denoised": "green", "reconstructed": "cyan", "requested": "yellow", "failed": "red"}
    for series, value in statuses.items():
        state = value["state"]
        table.add_row(
            short_name(series),
            f"[{colours.get(state, 'white')}]{state}[/]",
            *(
                str(value[k])
                for k in ("acquired_tilts", "corrected_tilts", "ctf_tilts", "failed_tilts", "excluded_tilts")
            ),
            str(value["latest_version"]),
        )
    return table


@dataclass(frozen=True)
class SeriesSummary:
    """What happened to one tilt series, gathered from the log."""

    tilt_series_id: str
    state: str
    tilts_used: int
    tilts_excluded: int
    mean_motion_angstroms: float | None
    defocus_range_micrometres: tuple[float, float] | None
    tomogram: str | None
    denoised: str | None
    seconds_last_tilt_to_tomogram: float | None


def summarise_session(settings: KafkaSettings, catalogue: Catalogue, serde: AvroSerde) -> list[SeriesSummary]:
    """Read the session's topics once and summarise every tilt series."""

    def events(suffix: str) -> list[ReadEvent]:
        topic = catalogue.topic(suffix)
        return [e for e in read_events(settings, [topic], start=StartAt.BEGINNING, serde=serde) if e.value]

    def values(suffix: str) -> list[dict[str, Any]]:
        return [e.value for e in events(suffix) if e.value is not None]

    # when the watcher announced each series' last tilt, and the first tomogram, by the broker's clock
    last_tilt_ms: dict[str, int] = {}
    for event in events("movie.acquired"):
        last_tilt_ms[str(event.key)] = max(last_tilt_ms.get(str(event.key), 0), event.timestamp_ms)
    tomogram_ms: dict[str, int] = {}
    for event in events("tomogram.reconstructed"):
        tomogram_ms.setdefault(str(event.key), event.timestamp_ms)

    statuses: dict[str, dict[str, Any]] = {}
    for value in values("tiltseries.status"):
        statuses[value["metadata"]["tilt_series_id"]] = value
    motion: dict[str, list[float]] = defaultdict(list)
    for value in values("movie.motion-corrected"):
        motion[value["metadata"]["tilt_series_id"]].append(value["total_motion_angstroms"])
    defocus: dict[str, list[float]] = defaultdict(list)
    for value in values("micrograph.ctf-estimated"):
        mean = (value["defocus_u_angstroms"] + value["defocus_v_angstroms"]) / 2e4
        defocus[value["metadata"]["tilt_series_id"]].append(mean)
    commands: dict[str, dict[str, Any]] = {}
    for value in values("tiltseries.reconstruction-requested"):
        series = value["metadata"]["tilt_series_id"]
        if series not in commands or value["version"] >= commands[series]["version"]:
            commands[series] = value
    tomograms = {v["metadata"]["tilt_series_id"]: v for v in values("tomogram.reconstructed")}
    denoised = {v["metadata"]["tilt_series_id"]: v for v in values("tomogram.denoised")}
    summaries = []
    for series, status in sorted(statuses.items()):
        command = commands.get(series)
        used = sum(not t["excluded"] for t in command["tilts"]) if command else 0
        excluded = len(command["tilts"]) - used if command else status["excluded_tilts"]
        tomogram = tomograms.get(series)
        elapsed = None
        if series in tomogram_ms and series in last_tilt_ms:
            elapsed = (tomogram_ms[series] - last_tilt_ms[series]) / 1000
        summaries.append(
            SeriesSummary(
                tilt_series_id=series,
                state=status["state"],
                tilts_used=used,
                tilts_excluded=excluded,
                mean_motion_angstroms=statistics.fmean(motion[series]) if motion[series] else None,
                defocus_range_micrometres=(min(defocus[series]), max(defocus[series]))
                if defocus[series]
                else None,
                tomogram=tomogram["tomogram"]["path"] if tomogram else None,
                denoised=denoised[series]["denoised_tomogram"]["path"] if series in denoised else None,
                seconds_last_tilt_to_tomogram=elapsed,
            )
        )
    return summaries


def short_name(tilt_series_id: str) -> str:
    """The series' name within its session (``cm40000-1:Position_1`` is ``Position_1``)."""
    return tilt_series_id.rpartition(":")[2]


def _or_dash(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def summary_table(summaries: list[SeriesSummary]) -> Table:
    """The closing table of the demo: one line per series, narrow enough for an 80-column terminal.

    Series are named within their session (the session is in the title); the files are in the
    session's processed folder, which the demo prints below the table.
    """
    sessions = sorted({s.tilt_series_id.rpartition(":")[0] for s in summaries} - {""})
    table = Table(
        "series",
        "state",
        "used",
        "excl",
        "motion Å",
        "defocus µm",
        "to tomogram",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.title = f"session {', '.join(sessions)}" if sessions else "session summary"
    for s in summaries:
        defocus = s.defocus_range_micrometres
        table.add_row(
            short_name(s.tilt_series_id),
            s.state,
            str(s.tilts_used),
            str(s.tilts_excluded),
            _or_dash(s.mean_motion_angstroms, ".1f"),
            f"{defocus[0]:.2f}-{defocus[1]:.2f}" if defocus else "-",
            _or_dash(s.seconds_last_tilt_to_tomogram, ".0f", " s"),
        )
    for column in table.columns:
        column.no_wrap = True
    return table
