"""Copying a movie to facility storage: checksum, verify, atomic rename; the source stays until then."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tiltstream.connectors.source.errors import TransferError

__all__ = ["TransferResult", "file_sha256", "partial_name", "transfer_file"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class TransferResult:
    """A verified copy in place: its checksum, its size and whether bytes were copied this time."""

    sha256: str
    size_bytes: int
    copied: bool


def partial_name(destination: Path) -> Path:
    """Where the copy is written before its rename: a hidden sibling ``.NAME.partial``."""
    return destination.with_name(f".{destination.name}.partial")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def transfer_file(
    source: Path,
    destination: Path,
    *,
    bytes_per_second: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> TransferResult:
    """Copy ``source`` to ``destination`` so that ``destination`` is only ever absent or complete.

    The bytes go to :func:`partial_name` (hashed on the way), are flushed to disk, read back and
    hashed again; only when both checksums agree is the copy renamed into place. A destination that
    already holds the same bytes (a restart after the rename) is kept as it is. The source is never
    touched here: the caller deletes it once the event about the copy is acknowledged.

    Parameters
    ----------
    bytes_per_second
        Throttle, to leave the microscope's network some room.
    on_bytes
        Called with each chunk's size (for metrics).

    Raises
    ------
    TransferError
        On any I/O error or a checksum mismatch (transient: try again later).
    """
    try:
        source_sha = file_sha256(source)
        size = source.stat().st_size
        if destination.exists() and file_sha256(destination) == source_sha:
            return TransferResult(source_sha, size, copied=False)
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = partial_name(destination)
        digest = hashlib.sha256()
        started = time.monotonic()
        written = 0
        with source.open("rb") as src, tmp.open("wb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                written += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
                if bytes_per_second:
                    time.sleep(max(started + written / bytes_per_second - time.monotonic(), 0))
            out.flush()
            os.fsync(out.fileno())
        copied_sha = digest.hexdigest()
        if copied_sha != source_sha or file_sha256(tmp) != source_sha:
            tmp.unlink(missing_ok=True)
            raise TransferError(f"{source.name}: checksum of the copy differs from the source")
        os.replace(tmp, destination)
        directory = os.open(destination.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return TransferResult(source_sha, size, copied=True)
    except OSError as exc:
        raise TransferError(f"{source.name}: copy to {destination} failed: {exc}") from exc
