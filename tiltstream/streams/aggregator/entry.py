"""What the aggregator's table stores per tilt series: the state, plus an outbox of commands.

The outbox makes a command durable before it is sent: the application writes the state with the
encoded command into the table, waits until the changelog has it, sends the command, then writes the
state again with an empty outbox. A crash in between leaves the outbox in the changelog, and the
restarted aggregator sends exactly those bytes (same ``request_id``, same content) again, so a
version can never go out with two different contents.

Encoding (:data:`ENTRY_VERSION`): one version byte, then msgpack of ``[partition, state, outbox]``,
the state as :func:`~tiltstream.streams.aggregator.state.state_to_plain` gives it (each fact a list
of its fields in declaration order; a field added at the end with a default keeps old entries
readable) and the outbox as ``[topic, bytes]`` pairs. Entries written before it (zlib-compressed
JSON, whose first byte is always ``0x78``) are still decoded, so a table written by an older
aggregator is read in place, without a replay; each is rewritten in the new encoding the next time
its series changes.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from typing import Any

import msgpack

from tiltstream.streams.aggregator.state import SeriesState, state_from_plain, state_to_plain

__all__ = ["ENTRY_VERSION", "TableEntry", "UnknownEntryVersionError", "decode_entry", "encode_entry"]

#: The first byte of every entry :func:`encode_entry` writes.
ENTRY_VERSION = 2

#: The first byte of a zlib stream: entries of the first encoding (zlib-compressed JSON).
_LEGACY_ZLIB = 0x78


class UnknownEntryVersionError(ValueError):
    """A table value of an encoding this aggregator does not know (written by a newer one?)."""


@dataclass(frozen=True)
class TableEntry:
    """A table value: the series' state, its table partition and the commands not yet acknowledged.

    ``outbox`` holds ``(topic, Avro single-object bytes)`` pairs.
    """

    state: SeriesState
    partition: int
    outbox: tuple[tuple[str, bytes], ...] = ()


def encode_entry(entry: TableEntry) -> bytes:
    """The version byte and msgpack (a 41-tilt series with every fact is about 9 kB)."""
    payload = [entry.partition, state_to_plain(entry.state), [[t, d] for t, d in entry.outbox]]
    packed: bytes = msgpack.packb(payload, use_bin_type=True)
    return bytes((ENTRY_VERSION,)) + packed


def decode_entry(data: bytes) -> TableEntry:
    """The inverse of :func:`encode_entry`; also reads the first (zlib JSON) encoding."""
    if not data:
        raise UnknownEntryVersionError("an empty table value")
    version = data[0]
    if version == ENTRY_VERSION:
        partition, state, outbox = msgpack.unpackb(data[1:], raw=False, strict_map_key=False)
        return TableEntry(state_from_plain(state), partition, tuple((t, bytes(d)) for t, d in outbox))
    if version == _LEGACY_ZLIB:
        return _decode_legacy(data)
    raise UnknownEntryVersionError(f"table value of unknown encoding version {version}")


def _decode_legacy(data: bytes) -> TableEntry:
    payload: dict[str, Any] = json.loads(zlib.decompress(data))
    return TableEntry(
        state=state_from_plain(payload["state"]),
        partition=payload["partition"],
        outbox=tuple((topic, base64.b64decode(text)) for topic, text in payload["outbox"]),
    )
