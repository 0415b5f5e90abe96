"""Reading movies and gain references (MRC, LZW TIFF) into float32 arrays; no torch here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import tifffile

from tiltstream.processors.runtime.errors import CorruptInputError, ImpossibleParametersError

__all__ = ["MovieData", "read_gain", "read_movie"]


@dataclass(frozen=True)
class MovieData:
    """The frames of a movie and its gain reference, as read from disk."""

    frames: np.ndarray  # (t, h, w) float32
    gain: np.ndarray | None  # (h, w) float32


def _read_stack(path: Path, movie_format: str) -> np.ndarray:
    try:
        if movie_format == "mrc":
            with mrcfile.open(path, permissive=False, mode="r") as mrc:
                data = np.array(mrc.data, dtype=np.float32)  # a writable copy
        elif movie_format in ("tiff", "tif"):
            data = np.asarray(tifffile.imread(path), dtype=np.float32)
        else:
            raise ImpossibleParametersError(f"movie format {movie_format!r} is not supported here")
    except (ValueError, tifffile.TiffFileError, EOFError, IndexError) as exc:
        raise CorruptInputError(f"{path.name}: cannot read as {movie_format}: {exc}") from exc
    return data


def read_movie(path: Path, movie_format: str, frame_count: int | None = None) -> np.ndarray:
    """Frames of the movie at ``path`` as a ``(t, h, w)`` float32 array.

    Raises
    ------
    CorruptInputError
        Unreadable, truncated, or fewer frames than the event announced.
    ImpossibleParametersError
        A format this backend cannot read (e.g. EER).
    """
    data = _read_stack(path, movie_format.lower())
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[0] < 2:
        raise CorruptInputError(f"{path.name}: expected a stack of frames, got shape {data.shape}")
    if frame_count is not None and data.shape[0] != frame_count:
        raise CorruptInputError(f"{path.name}: {data.shape[0]} frames on disk, {frame_count} announced")
    if not np.isfinite(data).all():
        raise CorruptInputError(f"{path.name}: frames contain NaN or infinite values")
    return data


def read_gain(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A gain reference (MRC or TIFF) of frame ``shape`` (h, w) as float32."""
    fmt = "mrc" if path.suffix.lower() in (".mrc", ".mrcs") else "tiff"
    gain = _read_stack(path, fmt)
    gain = gain[0] if gain.ndim == 3 else gain
    if gain.shape != shape:
        raise CorruptInputError(f"{path.name}: gain shape {gain.shape} does not match frames {shape}")
    return gain
