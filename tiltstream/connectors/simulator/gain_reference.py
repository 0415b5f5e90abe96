"""The detector's uneven sensitivity and the gain reference a facility records for it.

Each pixel of a counting detector registers only part of the electrons that hit it (its sensitivity,
here 0.65-1.0: column stripes, a weaker left half and a gradient, so that no rotation or flip of it
looks like another). The gain reference is its inverse (the frames are multiplied by it), stored turned
from the frames' orientation: rotated by ``rotation_quarter_turns`` (90 degrees counter-clockwise each,
y up) and flipped by ``flip`` (1 upside down, 2 left to right) *after* that rotation, it fits the frames,
as MotionCor2's ``-RotGain`` / ``-FlipGain`` and the motion corrector's ``gain_rotation_quarter_turns`` /
``gain_flip`` read it. Written as SerialEM's ``CountRef_*`` beside the frames, as MRC, TIFF or
Thermo Fisher's ``.gain`` (a float TIFF).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import mrcfile
import numpy as np
import numpy.typing as npt
import tifffile

__all__ = [
    "GAIN_SUFFIX",
    "detector_sensitivity",
    "stored_gain_reference",
    "thin_by_sensitivity",
    "write_gain",
]

#: The file suffix of each gain reference format the simulator writes.
GAIN_SUFFIX = {"mrc": ".mrc", "tiff": ".tiff", "gain": ".gain"}


def detector_sensitivity(shape: tuple[int, int], seed: int) -> npt.NDArray[np.float32]:
    """``(h, w)`` fraction of the electrons each pixel registers, seeded: stripes of 1-8 columns at
    0.9-1.0, the left half 0.8 times as sensitive, an 8 % gradient down the rows, 3 % per-pixel noise."""
    h, w = shape
    rng = np.random.default_rng([seed, 0x6A1])
    widths = rng.integers(1, 9, size=w)
    stripes = np.repeat(rng.uniform(0.9, 1.0, size=w), widths)[:w]  # (w,)
    rows = np.linspace(1.0, 0.92, h)[:, None]  # (h, 1)
    sensitivity = stripes[None, :] * rows * rng.uniform(0.97, 1.0, size=(h, w))  # (h, w)
    sensitivity[:, : w // 2] *= 0.8
    return np.clip(sensitivity, 0.05, 1.0).astype(np.float32)


def stored_gain_reference(
    sensitivity: npt.NDArray[np.float32], rotation_quarter_turns: int, flip: int
) -> npt.NDArray[np.float32]:
    """The gain reference ``1 / sensitivity`` as stored: turned so that rotating it by
    ``rotation_quarter_turns`` and then flipping it by ``flip`` gives back the frames' orientation."""
    if rotation_quarter_turns not in (0, 1, 2, 3) or flip not in (0, 1, 2):
        raise ValueError(f"gain rotation {rotation_quarter_turns} / flip {flip}: rotation 0-3, flip 0-2")
    gain = (1.0 / sensitivity).astype(np.float32)  # (h, w) in the frames' orientation
    if flip == 1:
        gain = gain[::-1, :]  # a flip undoes itself
    elif flip == 2:
        gain = gain[:, ::-1]
    # counter-clockwise with y up is clockwise as numpy prints (row 0 on top): undone anticlockwise
    return np.ascontiguousarray(np.rot90(gain, rotation_quarter_turns))


def thin_by_sensitivity(
    frames: npt.NDArray[np.uint8], sensitivity: npt.NDArray[np.float32], rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """``(t, h, w)`` counts each pixel registers: every electron kept with the pixel's sensitivity."""
    kept: npt.NDArray[np.uint8] = rng.binomial(frames, sensitivity[None]).astype(np.uint8)
    return kept


def write_gain(
    path: Path, gain: npt.NDArray[np.float32], gain_format: Literal["mrc", "tiff", "gain"]
) -> None:
    """Write the ``(h, w)`` float32 ``gain`` as MRC (mode 2) or a float32 TIFF (``tiff``, ``gain``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if gain_format == "mrc":
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(gain.astype(np.float32))
        return
    tifffile.imwrite(path, gain.astype(np.float32), photometric="minisblack", metadata=None)
