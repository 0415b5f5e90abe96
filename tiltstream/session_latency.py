"""Where a tilt series' time goes: last tilt's file complete → tomogram → denoised tomogram.

The time from the last tilt's movie being complete on disk (its file's mtime) to the series' first
``TomogramReconstructed`` (and ``TomogramDenoised``) is split along the critical path:

* **processing**: a processor working on the path's events (``duration_seconds`` of each output);
* **queued**: an input event waiting on its topic for a processor (produced, not yet being worked on);
* **orchestration**: everything else: the watcher noticing the file, the aggregator deciding the
  series is ready, Kafka's transit, consumer polling. The figure to drive towards zero.

The critical path is the tilt whose result released the reconstruction command (the last
motion-corrected or CTF event of the series before the command), then the reconstruction and the
denoising of that command. Times are the broker's timestamps (producer clocks on one machine).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.reader import ReadEvent, StartAt, read_events
from tiltstream.streams.serde import AvroSerde

__all__ = [
    "Breakdown",
    "SeriesLatency",
    "Step",
    "latency_breakdown",
    "latency_table",
    "percentile",
    "session_latencies",
]


@dataclass(frozen=True)
class Step:
    """One processing step on the critical path: its input's and output's produce times, its duration."""

    stage: str
    input_ms: float
    output_ms: float
    duration_seconds: float


@dataclass(frozen=True)
class Breakdown:
    """A latency and its split; the three parts add up to the total."""

    total_seconds: float
    queued_seconds: float
    processing_seconds: float
    orchestration_seconds: float


@dataclass(frozen=True)
class SeriesLatency:
    """One series' latencies to its tomogram and to its denoised tomogram (``None`` if never reached)."""

    tilt_series_id: str
    tomogram: Breakdown | None
    denoised: Breakdown | None


Interval = tuple[float, float]


def _union_length(intervals: Sequence[Interval]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def latency_breakdown(start_ms: float, end_ms: float, steps: Sequence[Step]) -> Breakdown:
    """Split ``[start_ms, end_ms]`` into time queued before, processing in, and outside ``steps``.

    Each step's processing is ``[output - duration, output]`` (never before its input) and its queueing
    is ``[input, processing start]``; both are clipped to the window. Where they overlap, processing
    counts (something was being worked on); the rest of the window is orchestration.
    """
    if end_ms < start_ms:
        raise ValueError(f"the window ends ({end_ms}) before it starts ({start_ms})")

    def clip(interval: Interval) -> Interval:
        return max(interval[0], start_ms), min(interval[1], end_ms)

    processing: list[Interval] = []
    queued: list[Interval] = []
    for step in steps:
        began = max(step.input_ms, step.output_ms - 1000.0 * step.duration_seconds)
        processing.append(clip((began, step.output_ms)))
        queued.append(clip((step.input_ms, began)))
    busy = _union_length(processing)
    waiting = _union_length([*processing, *queued]) - busy
    total = end_ms - start_ms
    return Breakdown(
        total_seconds=total / 1000,
        queued_seconds=waiting / 1000,
        processing_seconds=busy / 1000,
        orchestration_seconds=(total - busy - waiting) / 1000,
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (linear interpolation between order statistics)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _series(event: ReadEvent) -> str:
    assert event.value is not None
    return str(event.value["metadata"]["tilt_series_id"])


def session_latencies(
    kafka: KafkaSettings, catalogue: Catalogue, serde: AvroSerde, data_roots: Mapping[str, Path]
) -> list[SeriesLatency]:
    """Read a session's topics and break down every series' latency (see the module docstring).

    ``data_roots`` maps the events' data root names to mount points, to find the movies' files.
    """

    def events(suffix: str) -> dict[str, list[ReadEvent]]:
        by_series: dict[str, list[ReadEvent]] = defaultdict(list)
        topic = catalogue.topic(suffix)
        for event in read_events(kafka, [topic], start=StartAt.BEGINNING, serde=serde):
            if event.value is not None:
                by_series[_series(event)].append(event)
        for found in by_series.values():
            found.sort(key=lambda e: e.timestamp_ms)
        return by_series

    acquired = events("movie.acquired")
    corrected = events("movie.motion-corrected")
    ctf = events("micrograph.ctf-estimated")
    requested = events("tiltseries.reconstruction-requested")
    reconstructed = events("tomogram.reconstructed")
    denoised = events("tomogram.denoised")
    latencies = []
    for series in sorted(acquired):
        movies = {e.value["movie_id"]: e for e in acquired[series] if e.value}
        completed_ms = max(_file_complete_ms(e.value, data_roots) for e in movies.values() if e.value)
        tomogram = reconstructed[series][0] if reconstructed.get(series) else None
        if tomogram is None or tomogram.value is None:
            latencies.append(SeriesLatency(series, None, None))
            continue
        request_id = tomogram.value["request_id"]
        request = next(e for e in requested[series] if e.value and e.value["request_id"] == request_id)
        path = _release_path(request, movies, corrected.get(series, []), ctf.get(series, []))
        path.append(_step("reconstruct", request, tomogram))
        denoise = next(
            (e for e in denoised.get(series, []) if e.value and e.value["request_id"] == request_id), None
        )
        latencies.append(
            SeriesLatency(
                series,
                latency_breakdown(completed_ms, tomogram.timestamp_ms, path),
                None
                if denoise is None
                else latency_breakdown(
                    completed_ms, denoise.timestamp_ms, [*path, _step("denoise", tomogram, denoise)]
                ),
            )
        )
    return latencies


def _file_complete_ms(value: Mapping[str, Any], data_roots: Mapping[str, Path]) -> float:
    movie = value["movie"]
    return float((data_roots[movie["root"]] / movie["path"]).stat().st_mtime * 1000)


def _step(stage: str, source: ReadEvent, result: ReadEvent) -> Step:
    assert result.value is not None
    return Step(stage, source.timestamp_ms, result.timestamp_ms, float(result.value["duration_seconds"]))


def _release_path(
    request: ReadEvent,
    movies: Mapping[str, ReadEvent],
    corrected: Sequence[ReadEvent],
    ctf: Sequence[ReadEvent],
) -> list[Step]:
    """The steps of the tilt whose result came last before the command (motion correction, then CTF)."""
    before = [e for e in (*corrected, *ctf) if e.timestamp_ms <= request.timestamp_ms and e.value]
    if not before:
        return []
    last = max(before, key=lambda e: e.timestamp_ms)
    assert last.value is not None
    movie_id = last.value["movie_id"]
    movie = movies.get(movie_id)
    correction = next((e for e in corrected if e.value and e.value["movie_id"] == movie_id), None)
    steps = []
    if movie is not None and correction is not None:
        steps.append(_step("motioncorr", movie, correction))
    if last in ctf and correction is not None:
        steps.append(_step("ctf", correction, last))
    return steps


def latency_table(latencies: Sequence[SeriesLatency]) -> Table:
    """p50 and p99 of each part, to the tomogram and to the denoised tomogram."""
    table = Table("from last tilt's file to", "series", "part", "p50 s", "p99 s", "share of p50 total")
    table.title = "where the time goes"
    for target in ("tomogram", "denoised"):
        found = [b for b in (getattr(s, target) for s in latencies) if b is not None]
        if not found:
            continue
        median_total = percentile([b.total_seconds for b in found], 0.5)
        for part in ("total", "queued", "processing", "orchestration"):
            values = [getattr(b, f"{part}_seconds") for b in found]
            p50 = percentile(values, 0.5)
            share = f"{100 * p50 / median_total:.0f} %" if median_total > 0 else "-"
            table.add_row(
                target, str(len(found)), part, f"{p50:.1f}", f"{percentile(values, 0.99):.1f}", share
            )
    return table
