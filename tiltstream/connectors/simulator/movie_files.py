"""Movie files as a detector writes them: LZW TIFF, MRC or EER, appearing on disk a chunk at a time."""

from __future__ import annotations

import io
import itertools
import os
import time
from pathlib import Path
from typing import Literal

import mrcfile.mrcinterpreter
import numpy as np
import numpy.typing as npt
import tifffile

from tiltstream.connectors.simulator.eer_writer import eer_events_from_counts, encode_eer

__all__ = ["damage_movie", "encode_movie", "write_progressively"]


def encode_movie(
    frames: npt.NDArray[np.uint8],
    movie_format: Literal["tiff", "mrc", "eer"],
    pixel_size_angstroms: float,
    eer_frames_per_frame: int = 20,
    seed: int = 0,
) -> bytes:
    """The bytes of a movie file holding ``(t, h, w)`` frames.

    TIFF: one LZW-compressed 8-bit page per frame (as SerialEM saves counting-mode frames).
    MRC: mode 0 (8-bit) stack with the pixel size in the header.
    EER: each frame's electrons spread over ``eer_frames_per_frame`` electron frames (seeded sub-pixel
    positions), as a Falcon 4 writes them; grouped by that many they sum to ``frames``.
    """
    if movie_format == "eer":
        events = eer_events_from_counts(frames, eer_frames_per_frame, np.random.default_rng(seed))
        return encode_eer(events, (frames.shape[1], frames.shape[2]), pixel_size_angstroms)
    buffer = io.BytesIO()
    if movie_format == "tiff":
        with tifffile.TiffWriter(buffer) as writer:  # one page per frame, pages compressed in threads
            writer.write(
                frames, compression="lzw", photometric="minisblack", metadata=None, maxworkers=os.cpu_count()
            )
    else:
        mrc = mrcfile.mrcinterpreter.MrcInterpreter()  # in memory: no stream
        mrc._create_default_attributes()
        mrc.set_data(frames.astype(np.int8, copy=False))  # mode 0
        mrc.voxel_size = pixel_size_angstroms
        mrc.update_header_stats()
        return bytes(mrc.header.tobytes()) + bytes(mrc.extended_header.tobytes()) + bytes(mrc.data.tobytes())
    return buffer.getvalue()


def write_progressively(path: Path, data: bytes, *, chunks: int, seconds: float) -> None:
    """Write ``data`` to ``path`` in ``chunks`` appends spread over ``seconds`` (0: at once).

    A watcher polling the directory sees the file grow, as while a detector streams frames.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = max(chunks, 1)
    bounds = np.linspace(0, len(data), chunks + 1).astype(int)
    with path.open("wb") as out:
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            out.write(data[a:b])
            out.flush()
            if seconds > 0 and i < chunks - 1:
                time.sleep(seconds / chunks)
        os.fsync(out.fileno())


def damage_movie(data: bytes, kind: Literal["truncated", "corrupt"]) -> bytes:
    """A broken copy: ``truncated`` keeps the first 60 % of the bytes, ``corrupt`` garbles the header."""
    if kind == "truncated":
        return data[: int(len(data) * 0.6)]
    garbage = bytes((i * 37 + 11) % 256 for i in range(256))
    return garbage + data[256:]
