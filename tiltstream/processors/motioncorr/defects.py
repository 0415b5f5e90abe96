"""A camera's defect file, as MotionCor2's ``-DefectFile`` reads it, applied to the frames (numpy only).

The file lists rectangles of bad pixels, one ``x y width height`` per line (integers, x the column and y
the row of the first pixel in stored order; blank lines and ``#`` comments skipped). MotionCor2 replaces
those pixels with values of good pixels near them; here each frame's defect pixels take the mean of that
frame's good pixels after gain correction, so a dead or hot column leaves neither a fixed pattern for
the alignment to lock onto nor a stripe in the sum.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from tiltstream.processors.runtime.errors import CorruptInputError

__all__ = ["DefectRectangle", "defect_mask", "read_defect_file", "replace_defects"]

#: (x, y, width, height) in pixels.
DefectRectangle = tuple[int, int, int, int]


def read_defect_file(stream: IO[bytes]) -> list[DefectRectangle]:
    """The rectangles of the defect file in ``stream`` (``stream`` is closed).

    Raises
    ------
    CorruptInputError
        A line other than four integers, or a rectangle with a negative corner or no area.
    """
    name = str(getattr(stream, "name", "defect file"))
    with stream:
        text = stream.read().decode("utf-8", errors="replace")
    rectangles = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            x, y, width, height = (int(f) for f in fields)
        except ValueError:
            raise CorruptInputError(
                f"{name} line {number}: {line.strip()!r} is not 'x y width height'"
            ) from None
        if x < 0 or y < 0 or width < 1 or height < 1:
            raise CorruptInputError(
                f"{name} line {number}: rectangle {line.strip()!r} is empty or off the image"
            )
        rectangles.append((x, y, width, height))
    return rectangles


def defect_mask(rectangles: list[DefectRectangle], shape: tuple[int, int], scale: int = 1) -> np.ndarray:
    """``(h, w)`` bool, True on the defect pixels; ``scale`` 2 for frames rendered at twice the pixels.

    Raises
    ------
    CorruptInputError
        A rectangle that starts outside the frame (the file is of another camera or orientation).
    """
    mask = np.zeros(shape, dtype=bool)
    for x, y, width, height in rectangles:
        if y * scale >= shape[0] or x * scale >= shape[1]:
            raise CorruptInputError(
                f"defect rectangle {(x, y, width, height)} lies outside the {shape} frames"
            )
        mask[y * scale : (y + height) * scale, x * scale : (x + width) * scale] = True
    return mask


def replace_defects(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``frames`` ``(t, h, w)`` with each frame's ``mask`` pixels set to the mean of its other pixels (in
    place when float32)."""
    frames = np.asarray(frames, dtype=np.float32)
    if not mask.any():
        return frames
    good = ~mask
    for frame in frames:
        frame[mask] = frame[good].mean(dtype=np.float64) if good.any() else 0.0
    return frames
