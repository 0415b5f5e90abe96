"""The CRC-64-AVRO (Rabin) fingerprint of the Avro specification."""

from __future__ import annotations

__all__ = ["EMPTY", "crc64_avro"]

#: Fingerprint of the empty string, the algorithm's seed (from the Avro specification).
EMPTY = 0xC15D213AA4D7A795


def _table() -> tuple[int, ...]:
    entries = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        entries.append(fp)
    return tuple(entries)


_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    """Return the 64-bit CRC-64-AVRO fingerprint of ``data`` (a schema's parsing canonical form)."""
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp
