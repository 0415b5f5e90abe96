"""Processor throughput on this machine's CPU: cost per movie against the FFT floor, and group scaling.

1. Motion correction on 1024² x 20-frame movies and CTF estimation on their 1024² sums: seconds per
   movie and the ratio to one forward + inverse real FFT pass over the same data (see
   ``processors_gpu.py``, which this reuses; run that one on a GPU for the GPU figures). Global
   motion is timed for the builtin Fourier path and for the library path in the same run, with
   each one's drift error against the movie's true drift and whether the Fourier path meets the
   target of 3x the floor.
2. Scaling: movies per second with 1, 2 and 4 service instances in one consumer group on a
   4-partition topic, each job a fixed-duration stand-in (a sleep), against the ideal linear line
   ``instances / job seconds``. This measures the runtime (poll loop, pause/resume, produce and
   acknowledge, offset store), not the science.

    .venv/bin/python benchmarks/processors_throughput.py [--size 1024 --frames 20 --job-seconds 0.5]
    .venv/bin/python benchmarks/processors_throughput.py --movies 0      # compute only, no broker

Uses ``TILTSTREAM_TEST_BOOTSTRAP_SERVERS`` when set, else starts a local broker.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from typing import Any

import torch
from processors_gpu import measure_compute, print_rows

from tiltstream.log import configure_logging
from tiltstream.processors.runtime import (
    DataRoots,
    Job,
    Output,
    Processor,
    ProcessorService,
    ProcessorSettings,
    with_defaults,
)
from tiltstream.settings import KafkaSettings, LoggingSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker.throwaway import throwaway_bootstrap
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.metadata import event_id, make_metadata
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event


class FixedDurationJob(Processor[None]):
    """A stand-in processor: every movie takes ``seconds`` (a sleep), then one event is emitted."""

    stage = "motioncorr"
    input_record = "MovieAcquired"
    output_record = "MovieMotionCorrected"

    def __init__(self, seconds: float) -> None:
        super().__init__(DataRoots({}))
        self.seconds = seconds

    def process(self, job: Job, inputs: None) -> list[Output]:
        time.sleep(self.seconds)
        value = sample_event("MovieMotionCorrected")
        meta = job.value["metadata"]
        value["metadata"] = make_metadata(
            "MovieMotionCorrected",
            service="bench",
            microscope="m02",
            session_id="bench",
            tilt_series_id=meta["tilt_series_id"],
            key=(job.value["movie_id"],),
            causation_id=job.event_id,
        )
        value["movie_id"] = job.value["movie_id"]
        return [Output(self.output_record, value)]


def _murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, as the Java client and ``murmur2_random`` compute it)."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(key)) & 0xFFFFFFFF
    whole = len(key) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def _movies(count: int, partitions: int) -> list[dict[str, Any]]:
    """``count`` MovieAcquired events, tilt series chosen so every partition gets the same number."""
    per_partition: dict[int, list[str]] = {p: [] for p in range(partitions)}
    candidate = 0
    while any(len(keys) < 2 for keys in per_partition.values()):
        series = f"bench:S{candidate}"
        per_partition[_murmur2_partition(series.encode(), partitions)].append(series)
        candidate += 1
    values = []
    for i in range(count):
        series = per_partition[i % partitions][(i // partitions) % 2]
        value = sample_event("MovieAcquired", 1, i % 40)
        value["metadata"] = make_metadata(
            "MovieAcquired",
            service="bench",
            microscope="m02",
            session_id="bench",
            tilt_series_id=series,
            key=(i,),
        )
        value["movie_id"] = event_id("movie", series, i)
        values.append(with_defaults("MovieAcquired", value))
    return values


def _scaling_run(bootstrap: str, instances: int, job_seconds: float, movies: int) -> tuple[float, list[int]]:
    topics = TopicSettings(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=4)
    kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id="bench")
    group = f"bench-{uuid.uuid4().hex[:8]}"
    catalogue = Catalogue(topics)
    apply_topics(create_admin(kafka), [*catalogue.all_topics(), catalogue.dlq(group)])
    settings = ProcessorSettings(
        kafka=kafka, topics=topics, group_id=group, metrics_port=0, poll_timeout_seconds=0.05
    )
    services = [ProcessorService(FixedDurationJob(job_seconds), settings) for _ in range(instances)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in services]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(len(s.assignment) for s in services) < 4:
        time.sleep(0.1)
    time.sleep(1.0)  # let the cooperative rebalance settle
    producer = EventProducer(create_producer(kafka), catalogue)
    deliveries = [producer.send("MovieAcquired", v) for v in _movies(movies, 4)]
    start = time.monotonic()
    producer.wait(deliveries)

    def processed() -> int:
        total = 0.0
        for service in services:
            sample = service.registry.get_sample_value(
                "tiltstream_processor_processed_total", {"stage": "motioncorr"}
            )
            total += sample or 0.0
        return int(total)

    while processed() < movies and time.monotonic() - start < 600:
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    for service in services:
        service.stop()
    for thread in threads:
        thread.join(60)
    loads = [sum(d.partition == p for d in deliveries) for p in range(4)]
    return movies / elapsed, loads


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    parser.add_argument("--movies", type=int, default=32, help="0: leave out the scaling part")
    parser.add_argument(
        "--library-local", action="store_true", help="also the library's 5x5 local fit (a minute or more)"
    )
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING", format="console"))
    logging.getLogger("tiltstream.librdkafka").setLevel(logging.ERROR)

    device = torch.device("cpu")
    print(f"1. compute on CPU ({torch.get_num_threads()} torch threads; no GPU used here)")
    if args.size > 0:
        rows = measure_compute(
            args.size, args.frames, device, args.repeats, patches=(1, 5), library_local=args.library_local
        )
        print_rows(rows, f"cpu ({torch.get_num_threads()} threads)")

    if args.movies <= 0:
        return
    print(f"\n2. scaling: {args.movies} movies, stand-in job {args.job_seconds} s, 4 partitions")
    print(f"{'instances':>9}{'movies/s':>10}{'ideal':>8}{'of ideal':>10}   movies per partition")
    with throwaway_bootstrap() as bootstrap:
        for instances in (1, 2, 4):
            rate, loads = _scaling_run(bootstrap, instances, args.job_seconds, args.movies)
            ideal = instances / args.job_seconds
            print(f"{instances:>9}{rate:>10.2f}{ideal:>8.2f}{rate / ideal:>10.2f}   {loads}")


if __name__ == "__main__":
    main()
