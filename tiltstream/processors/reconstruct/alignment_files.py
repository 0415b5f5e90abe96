"""Alignment files other tools read: IMOD ``.xf`` / ``.tlt`` and AreTomo's ``.aln``.

* ``.xf``: one line per tilt, ``A11 A12 A21 A22 DX DY``; the transform maps a raw image position
  (relative to the centre, pixels) to the aligned one, ``x' = A x + d``: rotation that brings the
  tilt axis onto y, after the alignment shift.
* ``.tlt``: one tilt angle per line, degrees.
* ``.aln`` (AreTomo2/3): a ``#`` header (``RawSize``, ``NumPatches``, ``DarkFrame`` lines for the
  tilts left out, ``AlphaOffset``, ``BetaOffset``), then one row per tilt used:
  ``SEC ROT GMAG TX TY SMEAN SFIT SCALE BASE TILT``. ``ROT`` is the tilt axis from the y axis and
  ``TX``/``TY`` the specimen's displacement in the raw image, in raw pixels (the negative of the
  shift that aligns it), as teamtomo's readers interpret them.

The raw stack is the request's tilts used as input, in tilt order. A tilt the reconstruction leaves
out (the builtin alignment's outliers, AreTomo's dark frames) is a ``DarkFrame`` of the ``.aln``;
the ``.xf`` and ``.tlt`` have the rows of the aligned stack, the tilts used, as the ``.aln``'s rows
(cryoet-alignment's conversion of the ``.aln`` to IMOD gives a row per raw section instead, the left-out
ones as placeholders in its ``EXCLUDELIST2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiltstream.processors.runtime.atomic import atomic_path
from tiltstream.processors.runtime.errors import CorruptInputError

__all__ = ["AlnFile", "parse_aln", "write_aln", "write_tlt", "write_xf"]


@dataclass(frozen=True)
class AlnFile:
    """The content of an ``.aln`` file, in our conventions."""

    section: np.ndarray  # (t,) index of each tilt used in the raw stack
    tilt_axis_angle_degrees: np.ndarray  # (t,) from the image x axis (ROT + 90)
    shifts_xy_pixels: np.ndarray  # (t, 2) applied to align each raw image (-TX, -TY)
    tilt_angles_degrees: np.ndarray  # (t,)
    raw_size: tuple[int, int, int]  # x, y, tilts
    dark_sections: tuple[int, ...]  # raw indices left out
    alpha_offset_degrees: float
    dark_tilt_angles_degrees: tuple[float, ...] = ()  # nominal tilt of each dark section, when known


def write_xf(path: Path, shifts_xy_pixels: np.ndarray, tilt_axis_angle_degrees: float) -> None:
    """IMOD transforms for shifts ``(t, 2)`` (raw pixels) and the axis (from x)."""
    rotation = math.radians(-(tilt_axis_angle_degrees - 90.0))  # the axis onto y
    a = np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])
    lines = []
    for shift in shifts_xy_pixels:
        d = a @ shift  # shift first, then rotate: x' = A (x + s) = A x + A s
        lines.append(
            f"{a[0, 0]:12.7f}{a[0, 1]:12.7f}{a[1, 0]:12.7f}{a[1, 1]:12.7f}{d[0]:12.3f}{d[1]:12.3f}\n"
        )
    with atomic_path(path) as temporary:
        temporary.write_text("".join(lines))


def write_tlt(path: Path, tilt_angles_degrees: np.ndarray) -> None:
    """One angle per line."""
    with atomic_path(path) as temporary:
        temporary.write_text("".join(f"{a:8.2f}\n" for a in tilt_angles_degrees))


def write_aln(path: Path, content: AlnFile) -> None:
    """Write ``content`` in AreTomo's layout (global alignment only)."""
    x, y, n = content.raw_size
    lines = [
        "# AreTomo Alignment / Priism bprmMn \n",
        f"# RawSize = {x} {y} {n}\n",
        "# NumPatches = 0\n",
    ]
    dark_angles = content.dark_tilt_angles_degrees or (0.0,) * len(content.dark_sections)
    lines += [
        f"# DarkFrame = {i:5d} {i:5d} {angle:8.2f}\n"
        for i, angle in zip(content.dark_sections, dark_angles, strict=True)
    ]
    lines += [
        f"# AlphaOffset = {content.alpha_offset_degrees:8.2f}\n",
        f"# BetaOffset = {0.0:8.2f}\n",
        "# SEC     ROT         GMAG       TX          TY      SMEAN     SFIT    SCALE     BASE     TILT\n",
    ]
    for sec, axis, (sx, sy), tilt in zip(
        content.section,
        content.tilt_axis_angle_degrees,
        content.shifts_xy_pixels,
        content.tilt_angles_degrees,
        strict=True,
    ):
        lines.append(
            f"{int(sec):5d} {axis - 90.0:10.4f} {1.0:10.5f} {-sx:10.3f} {-sy:10.3f}"
            f" {1.0:8.2f} {1.0:8.2f} {1.0:8.2f} {0.0:8.2f} {tilt:8.2f}\n"
        )
    with atomic_path(path) as temporary:
        temporary.write_text("".join(lines))


def parse_aln(text: str) -> AlnFile:
    """Read the global alignment of an ``.aln`` file (local-alignment sections are ignored).

    Raises
    ------
    CorruptInputError
        No alignment rows, or a row that is not ten numbers.
    """
    raw_size = (0, 0, 0)
    dark: list[int] = []
    dark_angles: list[float] = []
    alpha = 0.0
    rows: list[list[float]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition("=")
            key = key.strip()
            if key == "RawSize":
                parts = value.split()
                raw_size = (int(parts[0]), int(parts[1]), int(parts[2]))
            elif key == "DarkFrame":
                parts = value.split()
                dark.append(int(parts[1]))
                dark_angles.append(float(parts[2]) if len(parts) > 2 else 0.0)
            elif key == "AlphaOffset":
                alpha = float(value)
            elif key.startswith("Local"):
                break  # per-patch rows follow: not part of the global alignment
            continue
        parts = stripped.split()
        try:
            numbers = [float(p) for p in parts]
        except ValueError as exc:
            raise CorruptInputError(f"aln row is not numeric: {stripped!r}") from exc
        if len(numbers) != 10:
            raise CorruptInputError(f"aln row has {len(numbers)} columns, expected 10: {stripped!r}")
        rows.append(numbers)
    if not rows:
        raise CorruptInputError("aln file has no alignment rows")
    table = np.array(rows)  # (t, 10)
    return AlnFile(
        section=table[:, 0].astype(int),
        tilt_axis_angle_degrees=table[:, 1] + 90.0,
        shifts_xy_pixels=-table[:, 3:5],
        tilt_angles_degrees=table[:, 9],
        raw_size=raw_size,
        dark_sections=tuple(dark),
        alpha_offset_degrees=alpha,
        dark_tilt_angles_degrees=tuple(dark_angles),
    )
