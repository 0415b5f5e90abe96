"""Opening input files: regular files only, and reads bounded in time.

A FIFO inside a data root would block ``open`` until a writer appears (and a read until it writes);
a device or socket is no movie either. :func:`open_regular` opens with ``O_NONBLOCK``, so a FIFO
never blocks, and refuses by ``fstat`` of the open descriptor anything but a regular file, so a file
swapped after the path was checked is refused too. The stream it returns checks a deadline before
every chunk it reads: a reader that takes its input from a stream (mrcfile, tifffile) cannot hang
on a stalled mount past ``timeout_seconds``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import time
from pathlib import Path
from typing import IO, Any

from tiltstream.processors.runtime.errors import InputReadTimeoutError, NotRegularFileError

__all__ = ["check_regular", "file_kind", "open_regular"]

#: Bytes one read asks the operating system for, so the deadline is checked between them.
CHUNK_BYTES = 8 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def file_kind(mode: int) -> str:
    """What an ``st_mode`` describes, in words: ``'a regular file'``, ``'a FIFO (named pipe)'`` ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def check_regular(path: Path, where: str | None = None) -> Path:
    """``path`` when it is a regular file; :class:`NotRegularFileError` naming it and its kind if not.

    Raises
    ------
    FileNotFoundError
        Nothing is there (the caller decides whether that is worth a retry).
    NotRegularFileError
        A FIFO, device, socket or directory.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(f"{where or path} is {file_kind(mode)}, not a regular file")
    return path


class _DeadlineReader(io.RawIOBase):
    """A raw stream over a descriptor whose reads fail once ``timeout_seconds`` have passed."""

    def __init__(self, fd: int, name: str, timeout_seconds: float | None) -> None:
        super().__init__()
        self._fd = fd
        self.name = name
        self._timeout_seconds = timeout_seconds
        self._deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise InputReadTimeoutError(f"reading {self.name} took over {self._timeout_seconds:g} s")
        view = memoryview(buffer).cast("B")
        return os.readv(self._fd, [view[:CHUNK_BYTES]])

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def open_regular(path: Path, *, where: str | None = None, timeout_seconds: float | None = None) -> IO[bytes]:
    """Open the regular file ``path`` for reading (binary, buffered, seekable; use it in ``with``).

    Parameters
    ----------
    path
        A resolved local path.
    where
        How messages name the file (e.g. ``raw:cm40000-1/Position_1_003.tiff``); ``path`` when omitted.
    timeout_seconds
        Reads after this many seconds from opening raise :class:`InputReadTimeoutError`.

    Raises
    ------
    NotRegularFileError
        A FIFO, device, socket or directory (a FIFO is refused without blocking).
    FileNotFoundError
        Nothing is there.
    """
    name = where or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a device without its driver)
            raise NotRegularFileError(f"{name} cannot be opened as a file: {exc.strerror}") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"{name} is {file_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        raw = _DeadlineReader(fd, name, timeout_seconds)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(raw)
