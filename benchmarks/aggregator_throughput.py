"""Aggregator throughput and decision latency on a simulated 4-microscope day, against a Murfey-like baseline.

Run: ``.venv/bin/python benchmarks/aggregator_throughput.py [--series 200] [--tilts 41] [--live 24]``

1. Throughput: the whole day (``--series`` tilt series of ``--tilts`` tilts on 4 microscopes, PACE
   bursts of 9 positions: MovieAcquired, MovieMotionCorrected and CtfEstimated per tilt and one
   TiltSeriesAcquisitionEnded per series) is written to Kafka first, then ``tiltstream aggregate`` is
   started and reads it all; events/s is counted from its first to its last output message.
2. Latency: with the aggregator running, ``--live`` more series arrive one after another; for each,
   the time from producing its last tilt's MovieMotionCorrected (and its CtfEstimated right after) to
   a consumer receiving the ReconstructionRequested, p50/p99.
3. Baseline: the same day's events through a gatherer that does what Murfey does: a PostgreSQL row
   per tilt (upsert, committed per event) and a completeness query per event
   (:class:`tiltstream.localdb.LocalPostgres`, or the database at ``TILTSTREAM_BENCH_POSTGRES_URL``).
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
from pathlib import Path
from typing import Any

import sqlalchemy
from confluent_kafka import Consumer, TopicPartition

from tiltstream.settings import KafkaSettings, LocalBrokerSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import read_events
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import default_registry
from tiltstream.streams.serde import AvroSerde

Event = tuple[str, dict[str, Any]]


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
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("tiltstream")), "aggregate"], env=env, stdout=log, stderr=log
    )


def measure_latency(
    kafka: KafkaSettings, catalogue: Catalogue, producer: EventProducer, first: int, count: int, tilts: int
) -> list[float]:
    topic = catalogue.topic("tiltseries.reconstruction-requested").name
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": f"bench-{uuid.uuid4().hex}"}
    )
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    partitions = []
    for number in metadata.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=30)
        partitions.append(TopicPartition(topic, number, high))
    consumer.assign(partitions)
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
    for series in range(first, first + count):
        events, last = series_events(series, tilts)
        producer.wait([producer.send(r, v) for r, v in events])
        series_id = last[0][1]["metadata"]["tilt_series_id"]
        sent[series_id] = time.perf_counter()
        producer.wait([producer.send(r, v) for r, v in last])
        deadline = time.monotonic() + 60
        while series_id not in received and time.monotonic() < deadline:
            time.sleep(0.001)
    stop.set()
    listener.join()
    consumer.close()
    return [received[s] - t for s, t in sent.items() if s in received]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=200, help="tilt series in the day (4 microscopes)")
    parser.add_argument("--tilts", type=int, default=41, help="tilts per series")
    parser.add_argument("--live", type=int, default=24, help="series for the latency measurement")
    args = parser.parse_args()
    events = day(1, args.series, args.tilts)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="tiltstream-bench-") as tmp:
        bootstrap = os.environ.get("TILTSTREAM_TEST_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = LocalBroker(
                LocalBrokerSettings(state_dir=Path(tmp) / "kafka", port=0, controller_port=0)
            )
            broker.start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap_servers
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        topics = TopicSettings(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=6)
        catalogue = Catalogue(topics)
        apply_topics(create_admin(kafka), catalogue.all_topics())
        producer = EventProducer(create_producer(kafka), catalogue)
        producer.wait([producer.send(record, value) for record, value in events], timeout=300)
        print(f"day: {args.series} series x {args.tilts} tilts = {len(events)} events on 4 microscopes")

        aggregator = run_aggregator(kafka, topics, Path(tmp) / "aggregator-data")
        stack.callback(aggregator.wait, 30)
        stack.callback(aggregator.terminate)
        found = wait_commands(kafka, catalogue, args.series, timeout=3600)
        statuses = list(read_events(kafka, [catalogue.topic("tiltseries.status")], timeout=30))
        first_ms = min(e.timestamp_ms for e in statuses)
        last_ms = max(e.timestamp_ms for e in found)
        rate = len(events) / max((last_ms - first_ms) / 1000, 1e-3)
        print(f"aggregator: {len(found)} commands, {rate:,.0f} events/s (first to last output message)")

        latencies = measure_latency(kafka, catalogue, producer, 10_000, args.live, args.tilts)
        if latencies:
            p50 = statistics.median(latencies) * 1000
            p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else p50
            print(
                f"latency last MovieMotionCorrected produced -> ReconstructionRequested consumed "
                f"({len(latencies)} series): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )

        url = os.environ.get("TILTSTREAM_BENCH_POSTGRES_URL")
        if not url:
            from tiltstream.localdb import LocalPostgres

            Path(tmp).chmod(0o755)  # PostgreSQL runs as its own account and must reach its directory
            postgres = stack.enter_context(LocalPostgres(Path(tmp) / "postgres"))
            url = postgres.url
        base_rate, base_commands = baseline(url, events)
        print(
            f"baseline (PostgreSQL row per tilt, completeness query per event): {base_rate:,.0f} events/s, "
            f"{base_commands} commands"
        )
        print(f"ratio aggregator / baseline throughput: {rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
