"""Reading movies and gain references (MRC, LZW TIFF) into float32 arrays; no torch here.

The readers take streams opened by :meth:`~tiltstream.processors.runtime.DataRoots.open_input`
(regular files only, reads bounded in time) and close them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import numpy as np
import tifffile

from tiltstream.processors.runtime.errors import CorruptInputError, ImpossibleParametersError
from tiltstream.processors.runtime.volume_io import read_mrc

__all__ = ["MovieData", "read_gain", "read_movie"]


@dataclass(frozen=True)
class MovieData:
    """The frames of a movie and its gain reference, as read from disk."""

    frames: np.ndarray  # (t, h, w) float32
    gain: np.ndarray | None  # (h, w) float32


def _name(stream: IO[bytes]) -> str:
    return str(getattr(stream, "name", "movie"))


def _read_stack(stream: IO[bytes], movie_format: str) -> np.ndarray:
    if movie_format == "mrc":
        return read_mrc(stream)
    with stream:
        if movie_format not in ("tiff", "tif"):
            raise ImpossibleParametersError(f"movie format {movie_format!r} is not supported here")
        try:
            return np.asarray(tifffile.imread(stream), dtype=np.float32)
        except (ValueError, tifffile.TiffFileError, EOFError, IndexError) as exc:
            raise CorruptInputError(f"{_name(stream)}: cannot read as {movie_format}: {exc}") from exc


def read_movie(stream: IO[bytes], movie_format: str, frame_count: int | None = None) -> np.ndarray:
    """Frames of the movie open in ``stream`` as a ``(t, h, w)`` float32 array (``stream`` is closed).

    Raises
    ------
    CorruptInputError
        Unreadable, truncated, or fewer frames than the event announced.
    ImpossibleParametersError
        A format this backend cannot read (e.g. EER).
    """
    name = _name(stream)
    data = _read_stack(stream, movie_format.lower())
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[0] < 2:
        raise CorruptInputError(f"{name}: expected a stack of frames, got shape {data.shape}")
    if frame_count is not None and data.shape[0] != frame_count:
        raise CorruptInputError(f"{name}: {data.shape[0]} frames on disk, {frame_count} announced")
    if not np.isfinite(data).all():
        raise CorruptInputError(f"{name}: frames contain NaN or infinite values")
    return data


def read_gain(stream: IO[bytes], shape: tuple[int, int]) -> np.ndarray:
    """A gain reference (MRC or TIFF) of frame ``shape`` (h, w) as float32 (``stream`` is closed)."""
    name = _name(stream)
    fmt = "mrc" if name.lower().endswith((".mrc", ".mrcs")) else "tiff"
    gain = _read_stack(stream, fmt)
    gain = gain[0] if gain.ndim == 3 else gain
    if gain.shape != shape:
        raise CorruptInputError(f"{name}: gain shape {gain.shape} does not match frames {shape}")
    return gain
