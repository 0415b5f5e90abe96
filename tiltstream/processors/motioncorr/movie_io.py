"""Reading movies (MRC, LZW TIFF, EER) and gain references (MRC, TIFF, Falcon ``.gain``, Gatan ``.dm4``)
into float32 arrays; no torch here.

The readers take streams opened by :meth:`~tiltstream.processors.runtime.DataRoots.open_input`
(regular files only, reads bounded in time) and close them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

import dm4
import numpy as np
import tifffile

from tiltstream.processors.motioncorr.eer import EerRendering, read_eer
from tiltstream.processors.runtime.errors import CorruptInputError, ImpossibleParametersError
from tiltstream.processors.runtime.volume_io import read_mrc

__all__ = ["MovieData", "orient_gain", "read_gain", "read_gain_image", "read_movie"]


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


def read_movie(
    stream: IO[bytes], movie_format: str, frame_count: int | None = None, eer: EerRendering | None = None
) -> np.ndarray:
    """Frames of the movie open in ``stream`` as a ``(t, h, w)`` float32 array (``stream`` is closed).

    EER movies are rendered by ``eer`` (EER frames per output frame, sampling); their ``frame_count``
    is the number of EER frames.

    Raises
    ------
    CorruptInputError
        Unreadable, truncated, or fewer frames than the event announced.
    ImpossibleParametersError
        A format this backend cannot read, or an EER movie without ``eer``.
    """
    name = _name(stream)
    if movie_format.lower() == "eer":
        if eer is None:
            raise ImpossibleParametersError(f"{name}: an EER movie needs its grouping and sampling")
        data = read_eer(stream, eer, name, frame_count)
        frame_count = None
    else:
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


def read_gain(
    stream: IO[bytes], shape: tuple[int, int], rotation_quarter_turns: int = 0, flip: int = 0
) -> np.ndarray:
    """A gain reference of frame ``shape`` (h, w) as float32 (``stream`` is closed).

    MRC (``.mrc``), Gatan DM4 (``.dm4``, read by the ``dm4`` library), or TIFF (``.tif``, ``.tiff``,
    Thermo Fisher's ``.gain``). It is turned by :func:`orient_gain` first; a gain of half the frame
    size along each axis (physical pixels, frames rendered at 2x) has each pixel repeated 2 x 2.

    Raises
    ------
    CorruptInputError
        Unreadable, or of another size than the frames.
    """
    name = _name(stream)
    gain = orient_gain(read_gain_image(stream), rotation_quarter_turns, flip)
    if gain.ndim == 2 and (2 * gain.shape[0], 2 * gain.shape[1]) == shape:
        gain = np.repeat(np.repeat(gain, 2, axis=0), 2, axis=1)
    if gain.shape != shape:
        raise CorruptInputError(f"{name}: gain shape {gain.shape} does not match frames {shape}")
    if not np.isfinite(gain).all():
        raise CorruptInputError(f"{name}: gain contains NaN or infinite values")
    return np.ascontiguousarray(gain, dtype=np.float32)


def read_gain_image(stream: IO[bytes]) -> np.ndarray:
    """The gain reference in ``stream`` as stored (MRC, DM4 or TIFF by its name), ``(h, w)`` float32."""
    name = _name(stream)
    lowered = name.lower()
    if lowered.endswith(".dm4"):
        gain = _read_dm4(stream, name)
    else:
        gain = _read_stack(stream, "mrc" if lowered.endswith((".mrc", ".mrcs")) else "tiff")
    gain = gain[0] if gain.ndim == 3 else gain
    if gain.ndim != 2:
        raise CorruptInputError(f"{name}: a gain reference is an image, got shape {gain.shape}")
    return np.asarray(gain, dtype=np.float32)


def orient_gain(gain: np.ndarray, rotation_quarter_turns: int = 0, flip: int = 0) -> np.ndarray:
    """``gain`` ``(h, w)`` rotated, then flipped, as MotionCor2/3's ``-RotGain`` / ``-FlipGain``.

    ``rotation_quarter_turns`` 0-3: 0, 90, 180, 270 degrees counter-clockwise with y up (row 0 at the
    bottom, as MRC viewers show it), which is clockwise as numpy prints the array
    (``numpy.rot90(gain, -k)``; the pixel mapping of MotionCor3's 90-degree rotation kernel). ``flip``
    0 none, 1 upside down (rows reversed), 2 left to right (columns reversed).
    """
    if rotation_quarter_turns not in (0, 1, 2, 3) or flip not in (0, 1, 2):
        raise ImpossibleParametersError(
            f"gain rotation {rotation_quarter_turns} / flip {flip}: rotation is 0-3, flip 0-2"
        )
    turned = np.rot90(gain, -rotation_quarter_turns)
    if flip == 1:
        turned = turned[::-1, :]
    elif flip == 2:
        turned = turned[:, ::-1]
    return np.ascontiguousarray(turned)


def _read_dm4(stream: IO[bytes], name: str) -> np.ndarray:
    """The largest image of a DM4 file that is not a thumbnail.

    Digital Micrograph writes a thumbnail (an RGB image, as large as the data for small images) first
    in ``ImageList`` and names its index in the root ``Thumbnails`` group; those are left out.
    """
    with stream:
        try:
            reader = dm4.DM4File(stream)
            root = reader.read_directory()
            thumbnails = _dm4_thumbnail_indices(reader, root)
            images = root.named_subdirs["ImageList"].unnamed_subdirs
            arrays = [
                _dm4_image(reader, image.named_subdirs["ImageData"])
                for index, image in enumerate(images)
                if index not in thumbnails
            ]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, EOFError, NotImplementedError,
                struct.error) as exc:  # fmt: skip
            raise CorruptInputError(f"{name}: unreadable DM4 ({type(exc).__name__}: {exc})") from exc
    if not arrays:
        raise CorruptInputError(f"{name}: DM4 file holds no image")
    return max(arrays, key=lambda array: array.size)


def _dm4_thumbnail_indices(reader: dm4.DM4File, root: dm4.DM4TagDir) -> set[int]:
    """Indices into ``ImageList`` of the thumbnails the root ``Thumbnails`` group lists (none: empty)."""
    group = root.named_subdirs.get("Thumbnails")
    if group is None:
        return set()
    return {int(reader.read_tag_data(entry.named_tags["ImageIndex"])) for entry in group.unnamed_subdirs}


def _dm4_image(reader: dm4.DM4File, image_data: dm4.DM4TagDir) -> np.ndarray:
    dimensions = [
        int(reader.read_tag_data(tag)) for tag in image_data.named_subdirs["Dimensions"].unnamed_tags
    ]
    data = np.asarray(reader.read_tag_data(image_data.named_tags["Data"]), dtype=np.float32)
    return data.reshape(dimensions[::-1])  # DM lists the fastest axis (x) first
