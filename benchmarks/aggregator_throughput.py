"""Aggregator throughput and decision latency on a simulated 4-microscope day, against a Murfey-like baseline.

Run: ``.venv/bin/python benchmarks/aggregator_throughput.py [--series 200] [--tilts 41] [--live 24]
[--repeats 3] [--warmup-series 27]``

Each round writes a fresh day to fresh topics and measures, one after the other on the same machine:

1. Throughput: the whole day (``--series`` tilt series of ``--tilts`` tilts on 4 microscopes, PACE
   bursts of 9 positions: MovieAcquired, MovieMotionCorrected and CtfEstimated per tilt and one
   TiltSeriesAcquisitionEnded per series) is written to Kafka first, then ``tiltstream aggregate`` is
   started and reads it all; events/s is counted from its first to its last output message (broker
   timestamps, so the worker's start-up is not counted).
2. Latency: with the aggregator running, ``--live`` more series arrive one after another; for each,
   once the aggregator's statuses show every tilt but the last processed (the facility's pace: a tilt
   every few seconds, far below the aggregator's throughput), the time from producing its last tilt's
   MovieMotionCorrected (and its CtfEstimated right after) to a consumer receiving the
   ReconstructionRequested. Then a PACE burst: 9 series whose last results are produced together.
3. Ceiling: a bare confluent-kafka consumer reading the day's input topics and decoding each value
   with our serde into its typed record.
4. Baseline: the same day's events through a gatherer that does what Murfey does: a PostgreSQL row
   per tilt (upsert, committed per event) and a completeness query per event
   (:class:`tiltstream.localdb.LocalPostgres`, or the database at ``TILTSTREAM_BENCH_POSTGRES_URL``).

A warm-up round (``--warmup-series``; the broker's JIT, PostgreSQL's caches, the page cache) is run
and discarded, then ``--repeats`` measured rounds. The summary gives the median of each figure, the
ratio aggregator / baseline as the median of the per-round ratios (each from one round, so load on
a shared machine affects both sides of it alike) with its range, and the latency p50/p99 over the
pooled series of all measured rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy
from confluent_kafka import Consumer, TopicPartition

from tiltstream.settings import KafkaSettings, TopicSettings
from tiltstream.streams import events as typed_events
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.aggregator import SeriesState, apply_event, decide
from tiltstream.streams.aggregator.entry import TableEntry, encode_entry
from tiltstream.streams.aggregator.fold import INPUT_TYPES
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.selection import TiltSelection
from tiltstream.streams.broker.throwaway import throwaway_bootstrap
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import read_events
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import default_registry
from tiltstream.streams.serde import AvroSerde

Event = tuple[str, dict[str, Any]]

_TYPES: dict[str, Any] = {kind.__name__: getattr(typed_events, kind.__name__) for kind in INPUT_TYPES}


def complete(record: str, value: dict[str, Any], microscope: str) -> dict[str, Any]:
    """A sample value with fields added to the schema since, at their defaults, on ``microscope``."""
    schema = default_registry().current(record).schema
    defaults = {f["name"]: f["default"] for f in schema["fields"] if "default" in f}
    return {**defaults, **value, "metadata": {**value["metadata"], "microscope": microscope}}


def series_events(series: int, tilts: int) -> tuple[list[Event], list[Event]]:
    """One series' events: all but the last tilt's results, and those results (corrected, CTF)."""
    microscope = f"m0{series % 4 + 1}"
    events: list[Event] = []
    for tilt in range(tilts):
        events.append(
            (
                "MovieAcquired",
                complete("MovieAcquired", sample_event("MovieAcquired", series, tilt), microscope),
            )
        )
        if tilt == tilts - 1:
            end = sample_event("TiltSeriesAcquisitionEnded", series)
            end.update(expected_tilt_count=tilts, acquired_tilt_count=tilts)
            events.append(
                ("TiltSeriesAcquisitionEnded", complete("TiltSeriesAcquisitionEnded", end, microscope))
            )
        results = [
            (record, complete(record, sample_event(record, series, tilt), microscope))
            for record in ("MovieMotionCorrected", "CtfEstimated")
        ]
        if tilt == tilts - 1:
            return events, results
        events += results
    raise ValueError("a series needs at least one tilt")


def day(first: int, count: int, tilts: int) -> list[Event]:
    """PACE bursts of 9 positions: the positions' tilts interleave, so 9 series end together."""
    out: list[Event] = []
    for burst in range(first, first + count, 9):
        members = [series_events(s, tilts) for s in range(burst, min(burst + 9, first + count))]
        for events, _ in members:
            out += events[: len(events) // 2]
        for events, last in members:
            out += events[len(events) // 2 :] + last
    return out


def wait_commands(kafka: KafkaSettings, catalogue: Catalogue, count: int, timeout: float) -> list[Any]:
    topic = catalogue.topic("tiltseries.reconstruction-requested")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(read_events(kafka, [topic], timeout=30))
        if len({e.key for e in found}) >= count:
            return found
        time.sleep(1.0)
    raise TimeoutError(f"fewer than {count} commands after {timeout} s")


#: Where ``--profile`` has the aggregator write its cProfile statistics (None: not profiled).
PROFILE: list[Path] = []


def run_aggregator(kafka: KafkaSettings, topics: TopicSettings, datadir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "TILTSTREAM_TOPICS_PREFIX": topics.prefix,
        "TILTSTREAM_TOPICS_PARTITIONS": str(topics.partitions),
        "TILTSTREAM_AGGREGATOR_APP_ID": "bench-aggregator",
        "TILTSTREAM_AGGREGATOR_DATADIR": str(datadir),
        "TILTSTREAM_AGGREGATOR_GRACE_SECONDS": "3600",
        "TILTSTREAM_AGGREGATOR_STANDBY_REPLICAS": "0",
        "TILTSTREAM_LOG_FORMAT": "json",
        "TILTSTREAM_LOG_LEVEL": "WARNING",
    }
    log = (datadir.parent / "aggregator.log").open("wb")
    command = [str(Path(sys.executable).with_name("tiltstream")), "aggregate"]
    if PROFILE:
        command = [sys.executable, "-m", "cProfile", "-o", str(PROFILE[0]), *command]
    return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def measure_latency(
    kafka: KafkaSettings, catalogue: Catalogue, producer: EventProducer, first: int, count: int, tilts: int
) -> list[float]:
    topic = catalogue.topic("tiltseries.reconstruction-requested").name
    consumer = _tail_consumer(kafka, topic)
    received: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = consumer.poll(0.05)
            key = message.key() if message is not None and message.error() is None else None
            if key is not None:
                received.setdefault(bytes(key).decode(), time.perf_counter())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    sent: dict[str, float] = {}
    statuses = Watcher(kafka, catalogue)
    for series in range(first, first + count):
        events, last = series_events(series, tilts)
        producer.wait([producer.send(r, v) for r, v in events])
        series_id = last[0][1]["metadata"]["tilt_series_id"]
        statuses.wait_processed({series_id}, tilts - 1)  # the facility's pace: a tilt every few seconds
        sent[series_id] = time.perf_counter()
        producer.wait([producer.send(r, v) for r, v in last])
        deadline = time.monotonic() + 60
        while series_id not in received and time.monotonic() < deadline:
            time.sleep(0.001)
    stop.set()
    listener.join()
    consumer.close()
    statuses.close()
    return [received[s] - t for s, t in sent.items() if s in received]


class Watcher:
    """The status topic from its end on: waits until series have their tilts processed."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue) -> None:
        self.consumer = _tail_consumer(kafka, catalogue.topic("tiltseries.status").name)
        self.serde = AvroSerde()
        self.processed: dict[str, int] = {}

    def wait_processed(self, series_ids: set[str], tilts: int, timeout: float = 120) -> None:
        """Until every series in ``series_ids`` has ``tilts`` tilts with a CTF estimate."""
        deadline = time.monotonic() + timeout
        while any(self.processed.get(s, 0) < tilts for s in series_ids) and time.monotonic() < deadline:
            message = self.consumer.poll(0.01)
            if message is None or message.error() is not None or message.value() is None:
                continue
            value = self.serde.decode(message.value()).value
            series = value["metadata"]["tilt_series_id"]
            self.processed[series] = max(self.processed.get(series, 0), value["ctf_tilts"] or 0)

    def close(self) -> None:
        self.consumer.close()


def measure_burst(
    kafka: KafkaSettings, catalogue: Catalogue, producer: EventProducer, first: int, tilts: int
) -> list[float]:
    """A PACE burst of 9 series ending together: from producing their last results to each command."""
    topic = catalogue.topic("tiltseries.reconstruction-requested").name
    consumer = _tail_consumer(kafka, topic)
    statuses = Watcher(kafka, catalogue)
    members = [series_events(s, tilts) for s in range(first, first + 9)]
    for events, _ in members:
        producer.wait([producer.send(r, v) for r, v in events])
    # the tilts before the last are processed (at the facility's pace); now the last results of all nine
    statuses.wait_processed({last[0][1]["metadata"]["tilt_series_id"] for _, last in members}, tilts - 1)
    statuses.close()
    received: dict[str, float] = {}
    start = time.perf_counter()
    producer.wait([producer.send(r, v) for _, last in members for r, v in last])
    deadline = time.monotonic() + 60
    while len(received) < len(members) and time.monotonic() < deadline:
        message = consumer.poll(0.01)
        key = message.key() if message is not None and message.error() is None else None
        if key is not None:
            received.setdefault(bytes(key).decode(), time.perf_counter())
    consumer.close()
    return [at - start for at in received.values()]


def _tail_consumer(kafka: KafkaSettings, topic: str) -> Consumer:
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": f"bench-{uuid.uuid4().hex}"}
    )
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    partitions = []
    for number in metadata.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=30)
        partitions.append(TopicPartition(topic, number, high))
    consumer.assign(partitions)
    return consumer


def ceiling(kafka: KafkaSettings, catalogue: Catalogue, count: int) -> float:
    """A bare confluent-kafka consumer reading the day's input topics, each value decoded with our serde
    into its typed record (what the aggregator must do at least); events/s."""
    serde = AvroSerde()
    readers = {catalogue.for_record(kind.__name__).name: kind for kind in INPUT_TYPES}
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"bench-ceiling-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(readers))
    seen = 0
    start = None
    deadline = time.monotonic() + 600
    while seen < count and time.monotonic() < deadline:
        for message in consumer.consume(500, 1.0):
            topic, value = message.topic(), message.value()
            if message.error() is not None or topic is None or value is None:
                continue
            start = start or time.perf_counter()
            serde.decode_typed(value, readers[topic])
            seen += 1
    consumer.close()
    return seen / (time.perf_counter() - (start or time.perf_counter()))


def _fold_series(series: int, tilts: int) -> tuple[list[float], list[int], SeriesState, TiltSelection]:
    """Fold and decide every event of one series in process: seconds and entry bytes after each."""
    serde = AvroSerde()
    rules = Rules(grace_seconds=3600)
    events, last = series_events(series, tilts)
    typed = [serde.decode_typed(serde.encode(r, v), _TYPES[r]) for r, v in events + last]
    state = SeriesState(typed[0].metadata.tilt_series_id)
    selection = TiltSelection(rules)
    costs: list[float] = []
    sizes: list[int] = []
    now = 1_800_000_000_000
    for event in typed:
        began = time.perf_counter()
        movie_id = getattr(event, "movie_id", None)
        state = decide(apply_event(state, event, now), now, rules, selection, movie_id).state
        costs.append(time.perf_counter() - began)
        sizes.append(len(encode_entry(TableEntry(state, 0))))
    return costs, sizes, state, selection


def long_series(tilts: int) -> str:
    """A series of ``tilts`` tilts whose angles repeat past 41 (retakes): the aggregator's own work per
    event (fold, decide with the kept tilt selection) and the table entry's size at the first and last
    tilts, in process (no broker; a first series warms up and is discarded)."""
    _fold_series(1, tilts)
    costs, sizes, state, selection = _fold_series(0, tilts)
    head, tail = statistics.median(costs[:30]), statistics.median(costs[-30:])
    return (
        f"series of {tilts} tilts with retakes ({len(state.movies)} movies, "
        f"{len(selection.by_movie)} angles): fold+decide per event (median) "
        f"{head * 1e6:.0f} us at tilts 1-10, "
        f"{tail * 1e6:.0f} us at tilts {tilts - 9}-{tilts} (ratio {tail / head:.2f}); "
        f"entry {sizes[2]:,} bytes after tilt 1, {sizes[-1]:,} after tilt {tilts} "
        f"({(sizes[-1] - sizes[2]) / max(tilts - 1, 1):.0f} bytes per further tilt, nothing per event)"
    )


def baseline(url: str, events: list[Event]) -> tuple[float, int]:
    """Murfey-like gatherer: upsert one row per tilt, query completeness per event; (events/s, commands)."""
    serde = AvroSerde()
    payloads = [(record, serde.encode(record, value)) for record, value in events]
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as db:
        db.execute(sqlalchemy.text("DROP TABLE IF EXISTS bench_tilt, bench_series"))
        db.execute(
            sqlalchemy.text(
                "CREATE TABLE bench_series"
                " (series_id text PRIMARY KEY, expected int, requested boolean DEFAULT false)"
            )
        )
        db.execute(
            sqlalchemy.text(
                "CREATE TABLE bench_tilt (movie_id text PRIMARY KEY, series_id text NOT NULL,"
                " angle double precision, micrograph text, defocus double precision, motion double precision)"
            )
        )
        db.execute(sqlalchemy.text("CREATE INDEX ON bench_tilt (series_id)"))
    upsert = {
        "MovieAcquired": "INSERT INTO bench_tilt (movie_id, series_id, angle) VALUES (:m, :s, :a)"
        " ON CONFLICT (movie_id) DO UPDATE SET angle = :a",
        "MovieMotionCorrected": "INSERT INTO bench_tilt (movie_id, series_id, micrograph, motion)"
        " VALUES (:m, :s, :p, :x) ON CONFLICT (movie_id) DO UPDATE SET micrograph = :p, motion = :x",
        "CtfEstimated": "INSERT INTO bench_tilt (movie_id, series_id, defocus) VALUES (:m, :s, :x)"
        " ON CONFLICT (movie_id) DO UPDATE SET defocus = :x",
    }
    complete_sql = sqlalchemy.text(
        "SELECT s.expected, s.requested, count(t.movie_id), count(t.micrograph), count(t.defocus)"
        " FROM bench_series s LEFT JOIN bench_tilt t ON t.series_id = s.series_id"
        " WHERE s.series_id = :s GROUP BY s.series_id"
    )
    commands = 0
    start = time.perf_counter()
    with engine.connect() as db:
        for record, payload in payloads:
            value = serde.decode(payload).value
            series = value["metadata"]["tilt_series_id"]
            if record == "TiltSeriesAcquisitionEnded":
                db.execute(
                    sqlalchemy.text(
                        "INSERT INTO bench_series (series_id, expected) VALUES (:s, :e)"
                        " ON CONFLICT (series_id) DO UPDATE SET expected = :e"
                    ),
                    {"s": series, "e": value["acquired_tilt_count"]},
                )
            else:
                db.execute(
                    sqlalchemy.text(upsert[record]),
                    {
                        "m": value["movie_id"],
                        "s": series,
                        "a": value.get("tilt_angle_degrees"),
                        "p": (value.get("micrograph") or {}).get("path"),
                        "x": value.get("total_motion_angstroms", value.get("defocus_u_angstroms")),
                    },
                )
            row = db.execute(complete_sql, {"s": series}).first()
            if row is not None and not row[1] and row[0] is not None and row[0] == row[2] == row[3] == row[4]:
                db.execute(
                    sqlalchemy.text("UPDATE bench_series SET requested = true WHERE series_id = :s"),
                    {"s": series},
                )
                commands += 1
            db.commit()
    return len(payloads) / (time.perf_counter() - start), commands


@dataclass
class Round:
    """One round's figures."""

    events: int
    commands: int
    rate: float
    latencies: list[float]
    burst: list[float]
    bare_rate: float
    base_rate: float
    base_commands: int

    @property
    def ratio(self) -> float:
        return self.rate / self.base_rate


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation (``statistics.quantiles`` needs two values)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_round(
    kafka: KafkaSettings, url: str, tmp: Path, name: str, series: int, tilts: int, live: int
) -> Round:
    """Write a day to fresh topics, run the aggregator over it and the live series, then the baseline."""
    events = day(1, series, tilts)
    topics = TopicSettings(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=6)
    catalogue = Catalogue(topics)
    apply_topics(create_admin(kafka), catalogue.all_topics())
    producer = EventProducer(create_producer(kafka), catalogue)
    producer.wait([producer.send(record, value) for record, value in events], timeout=300)

    aggregator = run_aggregator(kafka, topics, tmp / f"{name}-aggregator-data")
    try:
        found = wait_commands(kafka, catalogue, series, timeout=3600)
        statuses = list(read_events(kafka, [catalogue.topic("tiltseries.status")], timeout=30))
        first_ms = min(e.timestamp_ms for e in statuses)
        last_ms = max(e.timestamp_ms for e in found)
        rate = len(events) / max((last_ms - first_ms) / 1000, 1e-3)
        latencies = measure_latency(kafka, catalogue, producer, 10_000, live, tilts)
        burst = measure_burst(kafka, catalogue, producer, 20_000, tilts)
    finally:
        aggregator.terminate()
        aggregator.wait(60)
    bare_rate = ceiling(kafka, catalogue, len(events))
    base_rate, base_commands = baseline(url, events)
    commands = len({e.key for e in found})
    return Round(len(events), commands, rate, latencies, burst, bare_rate, base_rate, base_commands)


def describe(name: str, result: Round) -> str:
    p50 = f"{percentile(result.latencies, 0.5) * 1000:.1f} ms" if result.latencies else "n/a"
    return (
        f"{name}: aggregator {result.rate:,.0f} events/s ({result.commands} commands), "
        f"latency p50 {p50} ({len(result.latencies)} series), "
        f"bare consumer + serde {result.bare_rate:,.0f} events/s, "
        f"baseline {result.base_rate:,.0f} events/s ({result.base_commands} commands), "
        f"ratio {result.ratio:.2f}, of the bare consumer {result.rate / result.bare_rate:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=200, help="tilt series in the day (4 microscopes)")
    parser.add_argument("--tilts", type=int, default=41, help="tilts per series")
    parser.add_argument("--live", type=int, default=24, help="series for the latency measurement, per round")
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds")
    parser.add_argument("--warmup-series", type=int, default=27, help="series in the discarded warm-up round")
    parser.add_argument("--long-series", type=int, default=200, help="tilts of the long series (item 3)")
    parser.add_argument("--profile", type=Path, help="write the aggregator's cProfile statistics here")
    args = parser.parse_args()
    if args.profile:
        PROFILE.append(args.profile.resolve())
    day_events = len(day(1, args.series, args.tilts))
    print(
        f"day: {args.series} series x {args.tilts} tilts = {day_events} events on 4 microscopes; "
        f"warm-up round of {args.warmup_series} series, then {args.repeats} measured rounds",
        flush=True,
    )
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="tiltstream-bench-") as tmp:
        bootstrap = stack.enter_context(throwaway_bootstrap())
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        url = os.environ.get("TILTSTREAM_BENCH_POSTGRES_URL")
        if not url:
            from tiltstream.localdb import LocalPostgres

            Path(tmp).chmod(0o755)  # PostgreSQL runs as its own account and must reach its directory
            postgres = stack.enter_context(LocalPostgres(Path(tmp) / "postgres"))
            url = postgres.url
        warm = run_round(kafka, url, Path(tmp), "warm-up", args.warmup_series, args.tilts, min(args.live, 4))
        print(describe("warm-up (discarded)", warm), flush=True)
        rounds = []
        for number in range(1, args.repeats + 1):
            rounds.append(
                run_round(kafka, url, Path(tmp), f"round-{number}", args.series, args.tilts, args.live)
            )
            print(describe(f"round {number}", rounds[-1]), flush=True)

    rates = [r.rate for r in rounds]
    base_rates = [r.base_rate for r in rounds]
    ratios = [r.ratio for r in rounds]
    bare = [r.bare_rate for r in rounds]
    of_bare = [r.rate / r.bare_rate for r in rounds]
    latencies = [x for r in rounds for x in r.latencies]
    bursts = [x for r in rounds for x in r.burst]
    print(f"median of {len(rounds)} rounds:")
    print(f"  aggregator throughput: {spread(rates, '{:,.0f}')} events/s")
    if latencies:
        print(
            f"  latency last MovieMotionCorrected produced -> ReconstructionRequested consumed "
            f"({len(latencies)} series): p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
        )
    print(
        "  baseline (PostgreSQL row per tilt, completeness query per event): "
        f"{spread(base_rates, '{:,.0f}')} events/s"
    )
    print(f"  ratio aggregator / baseline throughput: {spread(ratios, '{:.2f}')}")
    print(f"  bare confluent-kafka consumer decoding with our serde: {spread(bare, '{:,.0f}')} events/s")
    print(f"  ratio aggregator / bare consumer: {spread(of_bare, '{:.2f}')}")
    if bursts:
        print(
            f"  latency during a 9-series PACE burst ({len(bursts)} series): "
            f"p50 {percentile(bursts, 0.5) * 1000:.1f} ms, p99 {percentile(bursts, 0.99) * 1000:.1f} ms"
        )
    print(f"  {long_series(args.long_series)}")


def spread(values: list[float], form: str) -> str:
    """``median (range min-max)`` of ``values`` in the format ``form``."""
    low, mid, high = (form.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} (range {low}-{high})"


if __name__ == "__main__":
    main()
