"""A SerialEM-style ``.mdoc`` written as the tilts are taken: a header, then one section per tilt."""

from __future__ import annotations

import os
import random
from datetime import datetime
from pathlib import Path

__all__ = ["MdocWriter", "serialem_datetime"]


def serialem_datetime(moment: datetime) -> str:
    """SerialEM's ``DateTime`` format, e.g. ``25-Nov-26  09:00:06``."""
    return moment.strftime("%d-%b-%y  %H:%M:%S")


class MdocWriter:
    """Append-only writer of one tilt series' ``.mdoc``.

    Parameters
    ----------
    path
        The ``.mdoc`` file; created with the header on construction.
    header
        Global ``key = value`` pairs (PixelSpacing, Voltage, ImageFile, ImageSize, DataMode).
    titles
        The ``[T = ...]`` title lines' texts (SerialEM writes the tilt axis angle in one of them).
    shuffle_seed
        When given, each section's fields are written in a shuffled order (a fault some tools trip on).
    """

    def __init__(
        self,
        path: Path,
        header: dict[str, str],
        titles: list[str],
        *,
        shuffle_seed: int | None = None,
    ) -> None:
        self.path = path
        self._shuffle = random.Random(shuffle_seed) if shuffle_seed is not None else None
        self.sections = 0
        lines = [f"{k} = {v}" for k, v in header.items()]
        for title in titles:
            lines += ["", f"[T = {title}]"]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._append("\n".join(lines) + "\n", create=True)

    def add_section(self, fields: dict[str, str]) -> int:
        """Append ``[ZValue = n]`` with ``fields`` in one write; return ``n`` (0-based)."""
        items = list(fields.items())
        if self._shuffle is not None:
            self._shuffle.shuffle(items)
        z = self.sections
        text = f"\n[ZValue = {z}]\n" + "".join(f"{k} = {v}\n" for k, v in items)
        self._append(text)
        self.sections += 1
        return z

    def _append(self, text: str, *, create: bool = False) -> None:
        with self.path.open("w" if create else "a", encoding="ascii", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
