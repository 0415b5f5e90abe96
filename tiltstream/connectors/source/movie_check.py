"""Is a movie file whole? Read only its header and directory, never the frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from tiltstream.connectors.source.errors import CorruptMovieError, InvalidAcquisitionValueError

__all__ = ["MovieHeader", "check_pixel_size", "inspect_movie", "movie_format"]

#: How far a movie header's pixel size may be from the mdoc's (after binning), as a fraction.
PIXEL_SIZE_TOLERANCE = 0.01

#: Bytes per voxel of each MRC mode (mode 101 packs two 4-bit values in a byte).
_MRC_MODE_BYTES = {0: 1.0, 1: 2.0, 2: 4.0, 3: 4.0, 4: 8.0, 6: 2.0, 12: 2.0, 101: 0.5}


@dataclass(frozen=True)
class MovieHeader:
    """What a movie's header says."""

    movie_format: str
    width_pixels: int
    height_pixels: int
    frame_count: int
    size_bytes: int
    pixel_size_angstroms: float | None = None  # from an MRC header's cell and grid; None if not written


def movie_format(path: Path) -> str:
    """``mrc``, ``tiff`` or ``eer`` from the file name; raise :class:`CorruptMovieError` otherwise."""
    suffix = path.suffix.lower()
    if suffix in (".mrc", ".mrcs"):
        return "mrc"
    if suffix in (".tif", ".tiff"):
        return "tiff"
    if suffix == ".eer":
        return "eer"
    raise CorruptMovieError(f"{path.name}: not a movie format the pipeline reads")


def _inspect_mrc(path: Path, size: int) -> MovieHeader:
    with path.open("rb") as f:
        raw = f.read(1024)
    if len(raw) < 1024:
        raise CorruptMovieError(f"{path.name}: {len(raw)} bytes, shorter than an MRC header")
    words = np.frombuffer(raw, dtype="<i4")
    nx, ny, nz, mode = (int(v) for v in words[:4])
    extended = int(words[23])
    if raw[208:212] != b"MAP " or mode not in _MRC_MODE_BYTES or min(nx, ny, nz) <= 0 or extended < 0:
        raise CorruptMovieError(f"{path.name}: not a valid MRC header (mode {mode}, size {nx}x{ny}x{nz})")
    expected = 1024 + extended + int(nx * ny * nz * _MRC_MODE_BYTES[mode])
    if size != expected:
        raise CorruptMovieError(
            f"{path.name}: {size} bytes, header says {expected} ({nz} frames of {nx}x{ny})"
        )
    grid_x = int(words[7])
    cell_x = float(np.frombuffer(raw[40:44], dtype="<f4")[0])
    pixel = cell_x / grid_x if grid_x > 0 and np.isfinite(cell_x) and cell_x > 0 else None
    return MovieHeader("mrc", nx, ny, nz, size, pixel)


def _inspect_tiff(path: Path, size: int, kind: str) -> MovieHeader:
    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            shapes = set()
            for page in pages:
                assert isinstance(page, tifffile.TiffPage)
                ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True)]
                if not ends or max(ends) > size or 0 in page.databytecounts:
                    raise CorruptMovieError(
                        f"{path.name}: frame {page.index} lies beyond the end of the file"
                    )
                shapes.add(page.shape[-2:])
    except CorruptMovieError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, ...
        raise CorruptMovieError(f"{path.name}: unreadable TIFF ({type(exc).__name__}: {exc})") from exc
    if len(shapes) != 1:
        raise CorruptMovieError(f"{path.name}: frames of different sizes {sorted(shapes)}")
    (height, width) = shapes.pop()
    return MovieHeader(kind, int(width), int(height), len(pages), size)


def inspect_movie(path: Path, expected_frames: int | None = None) -> MovieHeader:
    """Check a movie's header against its size (and the mdoc's frame count).

    A file still being written fails the same way as a corrupt one; the caller tells them apart by
    waiting until the file has stopped changing.

    Raises
    ------
    CorruptMovieError
        Unreadable header, data beyond the end of the file, or a frame count other than expected.
    """
    kind = movie_format(path)
    size = path.stat().st_size
    header = _inspect_mrc(path, size) if kind == "mrc" else _inspect_tiff(path, size, kind)
    if expected_frames is not None and kind != "eer" and header.frame_count != expected_frames:
        raise CorruptMovieError(
            f"{path.name}: {header.frame_count} frames, the mdoc says {expected_frames} (NumSubFrames)"
        )
    return header


def check_pixel_size(
    header: MovieHeader, mdoc_pixel_angstroms: float, binning: float | None, name: str
) -> None:
    """Refuse a movie whose header pixel size disagrees with the mdoc's by more than 1 %.

    The mdoc's ``PixelSpacing`` is the saved image's; the frames may be unbinned (``Binning`` > 1 in the
    mdoc) or super-resolution (half the pixel), so the header is compared with the mdoc's pixel at those
    scales and must agree with one of them.
    """
    if header.pixel_size_angstroms is None:
        return
    scales = {1.0, 0.5}
    if binning:
        scales |= {1.0 / binning, 0.5 / binning}
    ratios = [header.pixel_size_angstroms / (mdoc_pixel_angstroms * scale) for scale in sorted(scales)]
    if any(abs(r - 1.0) <= PIXEL_SIZE_TOLERANCE for r in ratios):
        return
    raise InvalidAcquisitionValueError(
        f"{name}: the movie header's pixel size {header.pixel_size_angstroms:.4g} Å disagrees with the "
        f"mdoc's {mdoc_pixel_angstroms:.4g} Å (binning {binning or 1:g}, super-resolution too) by more "
        f"than {PIXEL_SIZE_TOLERANCE:.0%}; set pixel_size_angstroms in the session parameters if the mdoc "
        "is wrong"
    )
