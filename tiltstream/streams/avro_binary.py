"""Avro binary primitives for the generated typed codecs of :mod:`tiltstream.streams.events`.

The generated module writes and reads each record of ``schemas/`` field by field with these
helpers, without walking a schema per message: that is what makes decoding straight into typed
records as fast as fastavro decoding into dicts (``benchmarks/serde_throughput.py`` measures it).
The encoding is the Avro specification's binary encoding: zig-zag varints for ``int``/``long``,
little-endian IEEE floats, length-prefixed UTF-8 strings, arrays and maps in blocks ending with a
zero count, unions as the branch index followed by the value. Readers take ``(buf, pos)`` and
return ``(value, next_pos)``; they raise ``ValueError``, ``IndexError``, ``struct.error`` or
``UnicodeDecodeError`` on corrupt input, which the serde turns into an undecodable-event error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

__all__ = [
    "RecordCodec",
    "read_array",
    "read_boolean",
    "read_branch",
    "read_bytes",
    "read_double",
    "read_enum",
    "read_fixed",
    "read_float",
    "read_int",
    "read_long",
    "read_map",
    "read_string",
    "read_timestamp_millis",
    "write_array",
    "write_boolean",
    "write_bytes",
    "write_double",
    "write_fixed",
    "write_float",
    "write_int",
    "write_long",
    "write_map",
    "write_string",
    "write_timestamp_millis",
]

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")

Reader = Callable[[bytes, int], tuple[T, int]]
Writer = Callable[[bytearray, T], None]


@dataclass(frozen=True)
class RecordCodec(Generic[T]):
    """The generated binary codec of one record: writes and reads the schema it was generated from.

    Attributes
    ----------
    record : str
        Full record name, e.g. ``tiltstream.events.MovieAcquired``.
    fingerprint : int
        CRC-64-AVRO fingerprint of the schema the codec was generated from.
    type : type
        The typed record class.
    write : Callable
        Appends the record's Avro binary body to a bytearray.
    read : Callable
        Reads a body from ``(buf, pos)``; returns the record and the position after it.
    """

    record: str
    fingerprint: int
    type: type[T]
    write: Writer[T]
    read: Reader[T]


def write_long(out: bytearray, value: int) -> None:
    """Append ``value`` as a zig-zag varint (Avro ``long``)."""
    if 0 <= value < 64:  # the common case (lengths, counts, small ints) in one byte
        out.append(value << 1)
        return
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise ValueError(f"{value} is outside the range of an Avro long")
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def write_int(out: bytearray, value: int) -> None:
    """Append ``value`` as an Avro ``int`` (32-bit, zig-zag varint)."""
    if 0 <= value < 64:
        out.append(value << 1)
        return
    if not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"{value} is outside the range of an Avro int")
    write_long(out, value)


def write_boolean(out: bytearray, value: bool) -> None:
    """Append one byte, 1 for true and 0 for false."""
    out.append(1 if value else 0)


def write_double(out: bytearray, value: float) -> None:
    """Append an 8-byte little-endian IEEE double."""
    out += _DOUBLE.pack(value)


def write_float(out: bytearray, value: float) -> None:
    """Append a 4-byte little-endian IEEE float."""
    out += _FLOAT.pack(value)


def write_bytes(out: bytearray, value: bytes) -> None:
    """Append a length-prefixed byte string."""
    write_long(out, len(value))
    out += value


def write_string(out: bytearray, value: str) -> None:
    """Append a length-prefixed UTF-8 string."""
    data = value.encode()
    size = len(data)
    if size < 64:
        out.append(size << 1)
    else:
        write_long(out, size)
    out += data


def write_fixed(out: bytearray, value: bytes, size: int) -> None:
    """Append exactly ``size`` bytes."""
    if len(value) != size:
        raise ValueError(f"fixed value has {len(value)} bytes, not {size}")
    out += value


def write_timestamp_millis(out: bytearray, value: datetime) -> None:
    """Append a timezone-aware datetime as milliseconds since the epoch (naive ones are refused)."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()} has no time zone; events carry UTC times")
    write_long(out, (value - _EPOCH) // _ONE_MS)


def write_array(out: bytearray, items: Sequence[T], write_item: Writer[T]) -> None:
    """Append ``items`` as one block and the terminating zero count."""
    if items:
        write_long(out, len(items))
        for item in items:
            write_item(out, item)
    out.append(0)


def write_map(out: bytearray, values: Mapping[str, T], write_value: Writer[T]) -> None:
    """Append ``values`` as one block of key/value pairs and the terminating zero count."""
    if values:
        write_long(out, len(values))
        for key, value in values.items():
            write_string(out, key)
            write_value(out, value)
    out.append(0)


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """Read a zig-zag varint (Avro ``int`` or ``long``)."""
    byte = buf[pos]
    pos += 1
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos
    n = byte & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError(f"varint longer than 10 bytes at {pos}")


read_int = read_long


def read_boolean(buf: bytes, pos: int) -> tuple[bool, int]:
    """Read one byte; anything but 0 is true."""
    return buf[pos] != 0, pos + 1


def read_double(buf: bytes, pos: int) -> tuple[float, int]:
    """Read an 8-byte little-endian IEEE double."""
    return _DOUBLE.unpack_from(buf, pos)[0], pos + 8


def read_float(buf: bytes, pos: int) -> tuple[float, int]:
    """Read a 4-byte little-endian IEEE float."""
    return _FLOAT.unpack_from(buf, pos)[0], pos + 4


def _sized(buf: bytes, pos: int, size: int) -> int:
    end = pos + size
    if size < 0 or end > len(buf):
        raise ValueError(f"length {size} at {pos} runs past the end of {len(buf)} bytes")
    return end


def read_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Read a length-prefixed byte string."""
    size, pos = read_long(buf, pos)
    end = _sized(buf, pos, size)
    return bytes(buf[pos:end]), end


def read_string(buf: bytes, pos: int) -> tuple[str, int]:
    """Read a length-prefixed UTF-8 string."""
    byte = buf[pos]
    if byte < 0x80 and not byte & 1:  # a length under 64 in one byte
        end = _sized(buf, pos + 1, byte >> 1)
        return buf[pos + 1 : end].decode(), end
    size, pos = read_long(buf, pos)
    end = _sized(buf, pos, size)
    return buf[pos:end].decode(), end


def read_fixed(buf: bytes, pos: int, size: int) -> tuple[bytes, int]:
    """Read exactly ``size`` bytes."""
    end = _sized(buf, pos, size)
    return bytes(buf[pos:end]), end


def read_timestamp_millis(buf: bytes, pos: int) -> tuple[datetime, int]:
    """Read milliseconds since the epoch as a UTC datetime."""
    millis, pos = read_long(buf, pos)
    return _EPOCH + timedelta(milliseconds=millis), pos


def read_enum(buf: bytes, pos: int, symbols: Sequence[T]) -> tuple[T, int]:
    """Read an enum index and return its symbol."""
    index, pos = read_long(buf, pos)
    if not 0 <= index < len(symbols):
        raise ValueError(f"enum index {index} at {pos} is not one of {len(symbols)} symbols")
    return symbols[index], pos


def read_branch(buf: bytes, pos: int, expected: int) -> int:
    """Check that the union branch at ``pos`` is the one-byte index ``expected``; return the next pos."""
    if buf[pos] != expected:
        raise ValueError(f"union branch byte {buf[pos]} at {pos} is not a branch of the schema")
    return pos + 1


def _block_count(buf: bytes, pos: int) -> tuple[int, int]:
    count, pos = read_long(buf, pos)
    if count < 0:  # a negative count is followed by the block's size in bytes
        _, pos = read_long(buf, pos)
        count = -count
    return count, pos


def read_array(buf: bytes, pos: int, read_item: Reader[T]) -> tuple[tuple[T, ...], int]:
    """Read an array in any number of blocks into a tuple."""
    items: list[T] = []
    count, pos = _block_count(buf, pos)
    while count:
        for _ in range(count):
            item, pos = read_item(buf, pos)
            items.append(item)
        count, pos = _block_count(buf, pos)
    return tuple(items), pos


def read_map(buf: bytes, pos: int, read_value: Reader[T]) -> tuple[dict[str, T], int]:
    """Read a map in any number of blocks into a dict."""
    values: dict[str, T] = {}
    count, pos = _block_count(buf, pos)
    while count:
        for _ in range(count):
            key, pos = read_string(buf, pos)
            values[key], pos = read_value(buf, pos)
        count, pos = _block_count(buf, pos)
    return values, pos
