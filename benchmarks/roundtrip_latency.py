"""Produce -> consume round-trip latency on the local broker, p50 and p99.

Sends paced ``MovieAcquired`` events through the project's own path (Avro single-object encoding,
idempotent ``acks=all`` producer, cooperative-sticky group consumer with decoding) and, as the
baseline in the same run, the same records as plain JSON bytes through bare clients with librdkafka's
defaults. Both pairs of clients are open together: each path first sends ``--warmup`` events that are
not recorded (the clients' start), then the two paths are measured in ``--rounds`` alternating rounds,
so that other work on a shared machine falls on both alike. Prints the percentiles of both and their
ratio. Usage::

    python benchmarks/roundtrip_latency.py [--events 2000] [--rate 400] [--warmup 200] [--rounds 10] \
        [--producer-set linger.ms=0] [--consumer-set isolation.level=read_uncommitted]

``--producer-set`` / ``--consumer-set`` override one setting of our clients (repeatable), to find
which of them the tail comes from; the time spent decoding is printed too.

Uses ``TILTSTREAM_TEST_BOOTSTRAP_SERVERS`` when set; otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer

from tiltstream.log import configure_logging
from tiltstream.settings import KafkaSettings, LoggingSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker.throwaway import throwaway_bootstrap
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.samples import sample_event
from tiltstream.streams.serde import AvroSerde

#: One path's send (by event index) and poll (the index of the event received, or None).
Paths = tuple[Callable[[int], None], Callable[[], int | None]]


def _measure(
    send: Callable[[int], None], poll: Callable[[], int | None], indices: range, rate: float
) -> list[float]:
    """Pace the sends of ``indices`` at ``rate``/s; a poller thread records each arrival's latency."""
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def consume() -> None:
        while len(latencies) < len(indices) and not done.is_set():
            index = poll()
            if index is not None and index in sent:
                latencies.append(time.perf_counter() - sent[index])

    thread = threading.Thread(target=consume)
    thread.start()
    start = time.perf_counter()
    for offset, i in enumerate(indices):
        target = start + offset / rate
        while (now := time.perf_counter()) < target:
            time.sleep(min(target - now, 0.001))
        sent[i] = time.perf_counter()
        send(i)
    thread.join(timeout=60)
    done.set()
    return latencies


def _alternate(
    paths: tuple[Paths, Paths], warmup: int, events: int, rounds: int, rate: float
) -> tuple[list[float], list[float]]:
    """Warm both paths, then measure them in alternating rounds; latencies of each path.

    The warm-up events cover the clients' start (connections to every partition leader, the idempotent
    producer's id), paid once per process. Alternating rounds spread the load of a shared machine over
    both paths alike instead of over whichever runs second.
    """
    for send, poll in paths:
        _measure(send, poll, range(warmup), rate)
    ours: list[float] = []
    baseline: list[float] = []
    per_round = events // rounds
    for r in range(rounds):
        indices = range(warmup + r * per_round, warmup + (r + 1) * per_round)
        ours += _measure(*paths[0], indices, rate)
        baseline += _measure(*paths[1], indices, rate)
    return ours, baseline


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def _wait_assigned(consumer: Consumer) -> None:
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)


def main() -> None:
    """Run both paths against one broker and print p50/p99 and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=400.0, help="events per second")
    parser.add_argument(
        "--warmup", type=int, default=200, help="events sent first on each path and not recorded"
    )
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds of each path")
    parser.add_argument("--producer-set", action="append", default=[], help="KEY=VALUE for our producer")
    parser.add_argument("--consumer-set", action="append", default=[], help="KEY=VALUE for our consumer")
    args = parser.parse_args()
    producer_overrides = dict(item.split("=", 1) for item in args.producer_set)
    consumer_overrides = dict(item.split("=", 1) for item in args.consumer_set)
    decode_seconds: list[float] = []
    configure_logging(LoggingSettings(level="WARNING", format="console"))
    total = args.warmup + args.events
    records = [sample_event("MovieAcquired", 1 + i % 12, i % 41) for i in range(total)]
    with throwaway_bootstrap() as bootstrap:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        catalogue = Catalogue(TopicSettings(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=6))
        admin = create_admin(kafka)
        apply_topics(admin, catalogue.topics())
        topic = catalogue.topic("movie.acquired").name
        serde = AvroSerde()

        # tiltstream's path
        producer = create_producer(kafka, **producer_overrides)
        consumer = create_consumer(kafka, f"bench-{uuid.uuid4().hex[:8]}", **consumer_overrides)
        consumer.subscribe([topic])
        _wait_assigned(consumer)
        index_of = {r["metadata"]["event_id"] + str(i): i for i, r in enumerate(records)}
        keyed: list[dict[str, Any]] = [
            {**r, "metadata": {**r["metadata"], "event_id": r["metadata"]["event_id"] + str(i)}}
            for i, r in enumerate(records)
        ]

        def send_avro(i: int) -> None:
            value = keyed[i]
            producer.produce(topic, serde.encode("MovieAcquired", value), value["metadata"]["tilt_series_id"])
            producer.poll(0)

        def poll_avro() -> int | None:
            message = consumer.poll(0.1)
            if message is None or message.error():
                return None
            began = time.perf_counter()
            event = serde.decode(message.value(), reader="MovieAcquired")
            decode_seconds.append(time.perf_counter() - began)
            consumer.store_offsets(message)
            return index_of[event.value["metadata"]["event_id"]]

        # baseline: JSON bytes through bare clients
        base_topic = catalogue.topic("micrograph.ctf-estimated").name
        quiet = {"bootstrap.servers": bootstrap, "logger": logging.getLogger("tiltstream.librdkafka")}
        bare_producer = Producer(quiet)
        bare_consumer = Consumer(
            {
                **quiet,
                "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            }
        )
        bare_consumer.subscribe([base_topic])
        _wait_assigned(bare_consumer)
        payloads = [json.dumps({"i": i, **r}, default=str).encode() for i, r in enumerate(records)]

        def send_json(i: int) -> None:
            bare_producer.produce(base_topic, payloads[i], records[i]["metadata"]["tilt_series_id"])
            bare_producer.poll(0)

        def poll_json() -> int | None:
            message = bare_consumer.poll(0.1)
            if message is None or message.error():
                return None
            return int(json.loads(message.value() or b"{}")["i"])

        ours, baseline = _alternate(
            ((send_avro, poll_avro), (send_json, poll_json)), args.warmup, args.events, args.rounds, args.rate
        )
        producer.flush(10)
        consumer.close()
        bare_producer.flush(10)
        bare_consumer.close()

    p50, p99 = _percentiles(ours)
    b50, b99 = _percentiles(baseline)
    print(
        f"events: {args.events} at {args.rate:g}/s after {args.warmup} warm-up events on each path, "
        f"in {args.rounds} alternating rounds, "
        f"received: tiltstream {len(ours)}, baseline {len(baseline)}"
    )
    print(f"tiltstream (avro, idempotent acks=all, linger 5 ms): p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    print(f"baseline (json bytes, librdkafka defaults):          p50 {b50:6.2f} ms  p99 {b99:6.2f} ms")
    print(f"ratio tiltstream/baseline: p50 {p50 / b50:.2f}x  p99 {p99 / b99:.2f}x")
    if decode_seconds:
        d50, d99 = _percentiles(decode_seconds)
        overrides = args.producer_set + args.consumer_set
        print(f"decode per event: p50 {d50:.3f} ms  p99 {d99:.3f} ms; overrides {overrides}")


if __name__ == "__main__":
    main()
