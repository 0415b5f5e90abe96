"""Serde throughput: Avro single-object encode+decode against raw fastavro and plain json.

All codecs process the same records in the same process, interleaved over several rounds (median
per codec), and the script prints events per second for each:

- raw fastavro: ``schemaless_writer`` + ``schemaless_reader`` of the dict, schema parsed once (the
  codec's own speed, no header, no registry);
- ours, typed: ``AvroSerde.encode_typed`` of a record of :mod:`tiltstream.streams.events` and
  ``AvroSerde.decode_typed`` back into one (single-object header, fingerprint lookup, checks);
- ours, dicts: ``AvroSerde.encode`` + ``AvroSerde.decode`` (what dict consumers use);
- cavro: ``cavro.Schema.binary_encode`` + ``binary_decode`` of the dict (the Cython Avro codec on
  PyPI, records decoded to dicts; schemaless like raw fastavro), when cavro is installed;
- json: ``json.dumps`` + ``json.loads`` with the timestamps turned back into datetimes.

It ends with the ratio of the typed path to raw fastavro and the target (>= 0.9x). Usage::

    python benchmarks/serde_throughput.py [--events 20000] [--rounds 5] [--record MovieAcquired]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from tiltstream.streams import events
from tiltstream.streams.samples import sample_event
from tiltstream.streams.serde import AvroSerde

TARGET_RATIO = 0.9


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _codecs(record: str, records: list[dict[str, Any]], serde: AvroSerde) -> dict[str, Callable[[], None]]:
    """One zero-argument round per codec, over the same events."""
    parsed = parse_schema(serde.registry.current(record).schema)
    cls = getattr(events, record)
    typed = [cls.from_dict(value) for value in records]  # what a producer holds
    stamps = [k for k, v in records[0].items() if isinstance(v, datetime)]

    def raw() -> None:
        for value in records:
            buffer = io.BytesIO()
            schemaless_writer(buffer, parsed, value)
            buffer.seek(0)
            schemaless_reader(buffer, parsed)

    def ours_typed() -> None:
        for event in typed:
            serde.decode_typed(serde.encode_typed(event), cls)

    def ours_dicts() -> None:
        for value in records:
            serde.decode(serde.encode(record, value), reader=record)

    codecs = {"raw": raw, "typed": ours_typed, "dicts": ours_dicts}
    cavro_round = _cavro(serde.registry.current(record).schema, records)
    if cavro_round is not None:
        codecs["cavro"] = cavro_round

    def plain_json() -> None:
        for value in records:
            decoded = json.loads(json.dumps(value, default=_json_default))
            decoded["metadata"]["occurred_at"] = datetime.fromisoformat(decoded["metadata"]["occurred_at"])
            for key in stamps:
                decoded[key] = datetime.fromisoformat(decoded[key])

    return {**codecs, "json": plain_json}


def _cavro(schema: dict[str, Any], records: list[dict[str, Any]]) -> Callable[[], None] | None:
    """cavro's round over ``records`` (checked to give back each record), or None without cavro."""
    try:
        import cavro  # type: ignore[import-not-found]
    except ImportError:
        return None
    codec = cavro.Schema(schema, record_decodes_to_dict=True)
    if codec.binary_decode(codec.binary_encode(records[0])) != records[0]:
        raise AssertionError("cavro does not give back the record it encoded")

    def run() -> None:
        for value in records:
            codec.binary_decode(codec.binary_encode(value))

    return run


def main() -> None:
    """Run the benchmark and print one line per codec and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", default="MovieAcquired")
    args = parser.parse_args()
    records = [sample_event(args.record, series=1 + i // 41, tilt=i % 41) for i in range(args.events)]
    serde = AvroSerde()
    rounds = _codecs(args.record, records[:500], serde)
    for work in rounds.values():  # warm caches
        work()
    rounds = _codecs(args.record, records, serde)
    times: dict[str, list[float]] = {name: [] for name in rounds}
    for _ in range(args.rounds):
        for name, work in rounds.items():
            times[name].append(_timed(work))
    rate = {name: args.events / statistics.median(seconds) for name, seconds in times.items()}
    avro_size = statistics.mean(len(serde.encode(args.record, r)) for r in records[:1000])
    json_size = statistics.mean(len(json.dumps(r, default=_json_default).encode()) for r in records[:1000])
    ratio = rate["typed"] / rate["raw"]
    print(f"{args.record}: events per round: {args.events}, rounds: {args.rounds} (median)")
    print(f"raw fastavro schemaless_writer+reader (dicts): {rate['raw']:10.0f} events/s")
    print(f"ours single-object encode+decode, typed:       {rate['typed']:10.0f} events/s")
    print(f"ours single-object encode+decode, dicts:       {rate['dicts']:10.0f} events/s")
    if "cavro" in rate:
        print(f"cavro binary_encode+binary_decode (dicts):     {rate['cavro']:10.0f} events/s")
    print(f"json encode+decode:                            {rate['json']:10.0f} events/s")
    print(f"sizes: avro {avro_size:.1f} bytes/event, json {json_size:.1f} bytes/event")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"ratio typed/raw fastavro: {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict})")
    dicts, versus_json = rate["dicts"] / rate["raw"], rate["typed"] / rate["json"]
    print(f"ratio dicts/raw fastavro: {dicts:.2f}x; typed/json: {versus_json:.2f}x")
    if "cavro" in rate:
        cavro_raw, cavro_json = rate["cavro"] / rate["raw"], rate["cavro"] / rate["json"]
        print(f"ratio cavro/raw fastavro: {cavro_raw:.2f}x; cavro/json: {cavro_json:.2f}x")


if __name__ == "__main__":
    main()
