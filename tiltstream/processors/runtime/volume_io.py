"""MRC images, stacks and volumes, and their PNG views: the file I/O every stage shares.

Writes are atomic (:func:`~tiltstream.processors.runtime.atomic.atomic_path`); reads take a stream
opened by :meth:`~tiltstream.processors.runtime.data_roots.DataRoots.open_input` (or
:func:`~tiltstream.processors.runtime.input_files.open_regular`), so only regular files are read and
the read is bounded in time.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mrcfile
import numpy as np
from mrcfile.mrcinterpreter import MrcInterpreter

from tiltstream.processors.runtime.atomic import atomic_path
from tiltstream.processors.runtime.errors import CorruptInputError

__all__ = ["read_mrc", "write_mrc", "write_png"]


def write_mrc(path: Path, data: np.ndarray, pixel_size_angstroms: float) -> None:
    """Write an image (h, w), a stack (t, h, w) or a volume (d, h, w) as float32 MRC with its pixel size."""
    with atomic_path(path) as temporary, mrcfile.new(temporary, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        mrc.voxel_size = pixel_size_angstroms


def write_png(path: Path, image: np.ndarray, *, max_pixels: int = 1024) -> None:
    """A grey PNG of ``image`` (h, w), binned to at most ``max_pixels`` and clipped to 1-99 %."""
    factor = max(1, int(np.ceil(max(image.shape) / max_pixels)))
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    small = image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    low, high = np.percentile(small, [1, 99])
    with atomic_path(path) as temporary:
        plt.imsave(temporary, np.clip(small, low, high), cmap="gray", format="png")


def read_mrc(stream: IO[bytes], *, permissive: bool = False) -> np.ndarray:
    """The data of the MRC file open in ``stream`` as a float32 array; ``stream`` is closed.

    Parameters
    ----------
    stream
        Open for reading, e.g. ``roots.open_input(data_path)``.
    permissive
        Accept files with a damaged header (as written by some external programs).

    Raises
    ------
    CorruptInputError
        Not an MRC file, truncated, or no data block.
    """
    name = getattr(stream, "name", "stream")
    with stream:
        try:
            mrc = MrcInterpreter(iostream=stream, permissive=permissive)
        except (ValueError, EOFError) as exc:
            raise CorruptInputError(f"{name}: cannot read as MRC: {exc}") from exc
        data = None if mrc.data is None else np.array(mrc.data, dtype=np.float32)
    mrc.close()  # after the stream: a closed stream is never written back to
    if data is None:
        raise CorruptInputError(f"{name}: MRC file without a readable data block")
    return data
