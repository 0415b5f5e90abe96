"""Serde throughput: Avro single-object encode+decode of MovieAcquired against plain json.

Both codecs process the same records in the same process, interleaved over several rounds, and the
script prints events per second for each and the ratio (Avro / json), plus encoded sizes. Usage::

    python benchmarks/serde_throughput.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from typing import Any

from tiltstream.streams.samples import sample_event
from tiltstream.streams.serde import AvroSerde


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _avro_round(serde: AvroSerde, records: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for record in records:
        serde.decode(serde.encode("MovieAcquired", record), reader="MovieAcquired")
    return time.perf_counter() - start


def _json_round(records: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for record in records:
        decoded = json.loads(json.dumps(record, default=_json_default))
        decoded["metadata"]["occurred_at"] = datetime.fromisoformat(decoded["metadata"]["occurred_at"])
        decoded["acquired_at"] = datetime.fromisoformat(decoded["acquired_at"])
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print one line per codec and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    records = [sample_event("MovieAcquired", series=1 + i // 41, tilt=i % 41) for i in range(args.events)]
    serde = AvroSerde()
    _avro_round(serde, records[:500])  # warm caches
    _json_round(records[:500])
    avro_times, json_times = [], []
    for _ in range(args.rounds):
        avro_times.append(_avro_round(serde, records))
        json_times.append(_json_round(records))
    avro_rate = args.events / statistics.median(avro_times)
    json_rate = args.events / statistics.median(json_times)
    avro_size = statistics.mean(len(serde.encode("MovieAcquired", r)) for r in records[:1000])
    json_size = statistics.mean(len(json.dumps(r, default=_json_default).encode()) for r in records[:1000])
    print(f"events per round: {args.events}, rounds: {args.rounds} (median)")
    print(f"avro single-object encode+decode: {avro_rate:10.0f} events/s, {avro_size:6.1f} bytes/event")
    print(f"json encode+decode (baseline):    {json_rate:10.0f} events/s, {json_size:6.1f} bytes/event")
    print(f"ratio avro/json: throughput {avro_rate / json_rate:.2f}x, size {avro_size / json_size:.2f}x")


if __name__ == "__main__":
    main()
