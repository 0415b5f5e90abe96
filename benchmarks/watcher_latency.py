"""Watcher latency under a simulated 4-microscope PACE load: file complete -> event acknowledged.

Four simulated microscopes each collect 9 PACE positions tilt by tilt (so 9 series end together on
each), together at about 0.6 movies/s (the facility rate of 2,000 movies an hour), at a reduced image
size so that the simulators leave the watchers CPU on 2 cores. One watcher per microscope (its default
poll and settle settings, ``--tilts-per-series`` so series end without waiting for quiet) announces the
movies. For every movie the latency runs from the moment its last byte and its mdoc section were on
disk to the broker's acknowledgement of its ``MovieAcquired``; for every series from its last movie to
its ``TiltSeriesAcquisitionEnded``. The baseline, measured in the same run and under the same load, is a
bare produce -> acknowledgement of the same record through the same producer path::

    python benchmarks/watcher_latency.py [--tilts 3] [--rate 0.6] [--size 256] [--poll S] [--mdoc-settle S]

Uses ``TILTSTREAM_TEST_BOOTSTRAP_SERVERS`` when set; otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tiltstream.connectors.simulator import SimulatedMovie, SimulatorSettings, simulate_session
from tiltstream.connectors.source import SourceSettings, Watcher
from tiltstream.log import configure_logging
from tiltstream.settings import KafkaSettings, LoggingSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker.throwaway import throwaway_bootstrap
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event

MICROSCOPES = 4
POSITIONS = 9


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return (
        f"p50 {q[49] * 1e3:7.1f} ms  p90 {q[89] * 1e3:7.1f} ms  p99 {q[98] * 1e3:7.1f} ms  (n={len(values)})"
    )


def _baseline(producer: EventProducer, stop: threading.Event, out: list[float]) -> None:
    """Bare produce -> ack of a MovieAcquired every 0.5 s through the same EventProducer path."""
    i = 0
    while not stop.wait(0.5):
        value = sample_event("MovieAcquired", series=1000 + i % 7, tilt=i % 41)
        started = time.monotonic()
        producer.wait([producer.send("MovieAcquired", value)])
        out.append(time.monotonic() - started)
        i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tilts", type=int, default=3, help="tilts per series (odd; ±(n-1)/2*3°)")
    parser.add_argument("--rate", type=float, default=0.6, help="movies per second, all microscopes")
    parser.add_argument("--size", type=int, default=256, help="frame size in pixels")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--poll", type=float, default=None, help="watcher poll interval [its default]")
    parser.add_argument("--mdoc-settle", type=float, default=None, help="mdoc settle time [its default]")
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING", format="console"))
    logging.getLogger("tiltstream.librdkafka").setLevel(logging.ERROR)
    completed: dict[tuple[str, str], float] = {}  # (session, movie file) -> complete on disk
    acked: dict[tuple[str, str], float] = {}
    ended: dict[str, float] = {}  # tilt series id -> end acked
    lock = threading.Lock()

    def on_movie(movie: SimulatedMovie) -> None:
        with lock:
            completed[(movie.movie.parent.parent.name, movie.movie.name)] = movie.completed_at

    def on_ack(record: str, value: dict[str, Any], at: float) -> None:
        with lock:
            if record == "MovieAcquired":
                key = (value["metadata"]["session_id"], value["movie"]["path"].rpartition("/")[2])
                acked[key] = at
            elif record == "TiltSeriesAcquisitionEnded":
                ended[value["metadata"]["tilt_series_id"]] = at

    with throwaway_bootstrap() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        topics = TopicSettings(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=6)
        catalogue = Catalogue(topics)
        apply_topics(create_admin(kafka), catalogue.all_topics())
        stop = threading.Event()
        watchers, threads, sims = [], [], []
        for k in range(1, MICROSCOPES + 1):
            watcher, sim = _microscope(k, Path(tmp), kafka, topics, args, on_ack)
            watchers.append(watcher)
            threads.append(threading.Thread(target=watcher.run, args=(stop,), daemon=True))
            sims.append(
                threading.Thread(
                    target=simulate_session,
                    args=(Path(tmp) / "raw" / f"cm4000{k}-1", sim),
                    kwargs={"on_movie": on_movie},
                )
            )
        for t in threads:
            t.start()
        time.sleep(3.0)  # the watchers read their (empty) history and start following
        baseline: list[float] = []
        probe = threading.Thread(
            target=_baseline,
            args=(EventProducer(create_producer(kafka), catalogue), stop, baseline),
            daemon=True,
        )
        probe.start()
        started = time.monotonic()
        total = MICROSCOPES * POSITIONS * args.tilts
        print(
            f"{MICROSCOPES} microscopes x {POSITIONS} PACE positions x {args.tilts} tilts = {total} movies "
            f"at {args.rate} movies/s ({args.size}² x {args.frames} frames, LZW TIFF), "
            f"about {total / args.rate:.0f} s"
        )
        for s in sims:
            s.start()
        for s in sims:
            s.join()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(ended) < MICROSCOPES * POSITIONS:
            time.sleep(0.2)
        stop.set()
        for t in [*threads, probe]:
            t.join(30)
        elapsed = time.monotonic() - started

    _report(completed, acked, ended, baseline, elapsed, watchers[0].settings)


def _microscope(
    k: int, tmp: Path, kafka: KafkaSettings, topics: TopicSettings, args: argparse.Namespace, on_ack: Any
) -> tuple[Watcher, SimulatorSettings]:
    """Microscope ``k``: its session folder, the watcher following it, the simulator writing it."""
    session = tmp / "raw" / f"cm4000{k}-1"
    session.mkdir(parents=True)
    settings = SourceSettings(
        kafka=kafka,
        topics=topics,
        data_root=tmp / "raw",
        microscope=f"m0{k}",
        tilts_per_series=args.tilts,
        **({"poll_interval_seconds": args.poll} if args.poll is not None else {}),
        **({"mdoc_settle_seconds": args.mdoc_settle} if args.mdoc_settle is not None else {}),
    )
    sim = SimulatorSettings(
        positions=POSITIONS,
        size_pixels=args.size,
        frames=args.frames,
        max_tilt_degrees=3.0 * (args.tilts // 2),
        tilt_step_degrees=3.0,
        rate_movies_per_second=args.rate / MICROSCOPES,
        seed=k,
        microscope=f"m0{k}",
    )
    return Watcher(session, settings, on_acknowledged=on_ack), sim


def _report(
    completed: dict[tuple[str, str], float],
    acked: dict[tuple[str, str], float],
    ended: dict[str, float],
    baseline: list[float],
    elapsed: float,
    source: SourceSettings,
) -> None:
    """Print the watcher's latencies beside the bare producer's, and their ratio."""
    movie_latency = [acked[k] - completed[k] for k in completed if k in acked]
    last_movie: dict[str, float] = {}
    for (scope, name), at in completed.items():
        series = f"{scope}:{'_'.join(name.split('_')[:2])}"
        last_movie[series] = max(last_movie.get(series, 0.0), at)
    end_latency = [at - last_movie[series] for series, at in ended.items()]
    missing = sorted(set(completed) - set(acked))
    print(
        f"ran {elapsed:.0f} s; {len(acked)} of {len(completed)} movies announced, {len(ended)} series ended"
    )
    if missing:
        print(f"NOT announced: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    print(f"watcher, file complete -> MovieAcquired acked:     {_percentiles(movie_latency)}")
    print(f"watcher, last movie -> AcquisitionEnded acked:     {_percentiles(end_latency)}")
    print(f"baseline, bare produce -> ack (same load):          {_percentiles(baseline)}")
    if movie_latency and len(baseline) > 1:
        mq = statistics.quantiles(movie_latency, n=100, method="inclusive")
        bq = statistics.quantiles(baseline, n=100, method="inclusive")
        print(
            f"ratio watcher/baseline: p50 x{mq[49] / bq[49]:.1f}, p99 x{mq[98] / bq[98]:.1f} "
            f"(the watcher's floor is its poll interval {source.poll_interval_seconds} s, "
            f"mdoc settle {source.mdoc_settle_seconds} s and two equal looks at each file)"
        )


if __name__ == "__main__":
    main()
