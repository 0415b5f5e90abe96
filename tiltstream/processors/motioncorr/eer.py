"""EER movies (Falcon 4/4i): electron frames decoded by tifffile/imagecodecs and summed into groups.

An EER file holds hundreds to thousands of electron frames (one event list each); motion correction
works on output frames, each the sum of ``frames_per_group`` consecutive EER frames (the remainder
at the end is dropped, as eerfile and RELION do). ``sampling`` 2 renders the events on a grid twice
as fine (the EER sub-pixel bits), 1 on the physical pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import numpy as np
import tifffile

from tiltstream.processors.runtime.errors import CorruptInputError, ImpossibleParametersError

__all__ = ["EerRendering", "eer_frames_per_group", "read_eer"]


@dataclass(frozen=True)
class EerRendering:
    """How EER frames become output frames."""

    frames_per_group: int  # EER frames summed into one output frame
    sampling: int = 1  # 1: physical pixels; 2: super-resolution (twice the pixels along each axis)


def eer_frames_per_group(
    eer_frames: int,
    dose_e_per_angstrom2: float,
    group_frames: int,
    dose_per_output_frame_e_per_angstrom2: float,
    output_frames_without_dose: int = 10,
) -> int:
    """EER frames per output frame: ``group_frames`` when set (> 0), else the number of EER frames that
    make ``dose_per_output_frame_e_per_angstrom2`` given the movie's dose, else (dose unknown: 0) as
    many as make ``output_frames_without_dose`` output frames; at least 1, and at most half the frames
    so that two output frames remain.

    Raises
    ------
    ImpossibleParametersError
        A group size that leaves fewer than two output frames.
    """
    if group_frames > 0:
        group = group_frames
    elif dose_e_per_angstrom2 > 0:
        per_eer_frame = dose_e_per_angstrom2 / eer_frames
        group = round(dose_per_output_frame_e_per_angstrom2 / per_eer_frame)
    else:
        group = eer_frames // max(output_frames_without_dose, 2)
    if group_frames <= 0:
        group = min(max(group, 1), eer_frames // 2)
    if group < 1 or eer_frames // group < 2:
        raise ImpossibleParametersError(f"EER grouping of {group} frames leaves fewer than 2 of {eer_frames}")
    return group


def read_eer(
    stream: IO[bytes], rendering: EerRendering, name: str, eer_frames: int | None = None
) -> np.ndarray:
    """The output frames ``(t, h, w)`` float32 of the EER movie in ``stream`` (``stream`` is closed).

    Raises
    ------
    CorruptInputError
        Not an EER file, an undecodable frame, other than ``eer_frames`` EER frames (when given), or
        fewer than two output frames.
    """
    if rendering.sampling not in (1, 2) or rendering.frames_per_group < 1:
        raise ImpossibleParametersError(f"EER rendering {rendering}: sampling is 1 or 2, groups >= 1")
    with stream:
        try:
            with tifffile.TiffFile(stream, superres=rendering.sampling - 1) as tif:
                if not tif.is_eer or not tif.series:
                    raise CorruptInputError(f"{name}: not an EER file (no EER acquisition metadata)")
                if eer_frames is not None and len(tif.series[0]) != eer_frames:
                    raise CorruptInputError(
                        f"{name}: {len(tif.series[0])} EER frames, {eer_frames} announced"
                    )
                return _sum_groups(tif.series[0], rendering.frames_per_group, name)
        except CorruptInputError:
            raise
        except (ValueError, RuntimeError, tifffile.TiffFileError, EOFError, IndexError, KeyError) as exc:
            # imagecodecs raises its own RuntimeError subclasses for a corrupt bit stream
            raise CorruptInputError(f"{name}: cannot decode EER: {type(exc).__name__}: {exc}") from exc


def _sum_groups(pages: tifffile.TiffPageSeries, group: int, name: str) -> np.ndarray:
    """Sum consecutive pages in groups, one page decoded at a time."""
    count = len(pages) // group
    if count < 2:
        raise CorruptInputError(f"{name}: {len(pages)} EER frames make fewer than 2 groups of {group}")
    first = pages[0]
    assert first is not None
    out = np.zeros((count, *first.shape[-2:]), dtype=np.float32)  # (t, h, w)
    for index in range(count * group):
        page = pages[index]
        if page is None:
            raise CorruptInputError(f"{name}: EER frame {index} is missing")
        out[index // group] += page.asarray()
    return out
