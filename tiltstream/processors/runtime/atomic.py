"""Writing output files atomically: a temporary name in the same folder, then one rename."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` when the block succeeds.

    Readers never see a half-written file, and a job redone after a crash simply replaces the
    output. The temporary keeps ``final``'s suffix so libraries that look at it (PNG, MRC) still work.
    On an exception the temporary file is removed and ``final`` is left as it was.
    """
    temporary = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
