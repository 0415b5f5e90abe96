"""What the aggregator's table stores per tilt series: the state, plus an outbox of commands.

The outbox makes a command durable before it is sent: the application writes the state with the
encoded command into the table, waits until the changelog has it, sends the command, then writes the
state again with an empty outbox. A crash in between leaves the outbox in the changelog, and the
restarted aggregator sends exactly those bytes (same ``request_id``, same content) again, so a
version can never go out with two different contents.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass

from tiltstream.streams.aggregator.state import SeriesState, state_from_json, state_to_json

__all__ = ["TableEntry", "decode_entry", "encode_entry"]


@dataclass(frozen=True)
class TableEntry:
    """A table value: the series' state, its table partition and the commands not yet acknowledged.

    ``outbox`` holds ``(topic, Avro single-object bytes)`` pairs.
    """

    state: SeriesState
    partition: int
    outbox: tuple[tuple[str, bytes], ...] = ()


def encode_entry(entry: TableEntry) -> bytes:
    """zlib-compressed JSON (a 41-tilt series is about 7 kB)."""
    payload = {
        "state": json.loads(state_to_json(entry.state)),
        "partition": entry.partition,
        "outbox": [[topic, base64.b64encode(data).decode()] for topic, data in entry.outbox],
    }
    return zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)


def decode_entry(data: bytes) -> TableEntry:
    """The inverse of :func:`encode_entry`."""
    payload = json.loads(zlib.decompress(data))
    return TableEntry(
        state=state_from_json(json.dumps(payload["state"]).encode()),
        partition=payload["partition"],
        outbox=tuple((topic, base64.b64decode(text)) for topic, text in payload["outbox"]),
    )
