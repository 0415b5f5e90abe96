"""EER movies as a Falcon 4/4i writes them: one TIFF page per electron frame, each a bitstream of events.

Written from the format's description (Thermo Fisher's EER documentation, as the TIFF compression
scheme 65001 that tifffile/imagecodecs decode), not from any reader's code:

- the file is a BigTIFF; every page is one EER frame, one strip, compression 65001, and the first page
  carries the acquisition metadata as XML (``<metadata><item name=...>``) in tag 65001;
- a frame is a little-endian bit stream (least significant bit first). Pixels are visited in raster
  order (x fastest). Each code starts with a 7-bit run: the number of empty pixels before the next
  electron. A run of 127 (all ones) only skips 127 pixels and has nothing after it. Any other run is
  followed by the electron's sub-pixel position, 2 bits across then 2 bits down (a 4 x 4 grid per pixel),
  each stored exclusive-or 2; the next run counts from the pixel after the electron;
- the stream ends with a run that reaches exactly the end of the frame (a run of 0 right after an
  electron in the last pixel), padded with zero bits.

A frame holds at most one electron per physical pixel, as the detector's event list does. These
conventions (overflow runs without sub-pixel bits, sub-pixel bits exclusive-or 0b1010 over both axes, the
end at the frame's last pixel) are also those of MotionCor3's CPU decoder.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import tifffile

__all__ = [
    "EER_COMPRESSION",
    "EER_SUBPIXELS",
    "eer_events_from_counts",
    "eer_metadata_xml",
    "encode_eer",
    "encode_eer_frame",
]

#: TIFF compression code of the 7-bit run / 2 + 2 sub-pixel bits EER variant.
EER_COMPRESSION = 65001
#: Sub-pixel positions per physical pixel along each axis.
EER_SUBPIXELS = 4
_RUN_BITS = 7
_SKIP = (1 << _RUN_BITS) - 1  # 127: a run that only skips pixels
_CODE_BITS = _RUN_BITS + 4
_SUBPIXEL_XOR = 2


def _codes(
    y_quarter: npt.NDArray[np.int64], x_quarter: npt.NDArray[np.int64], height: int, width: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The codes of one frame and their lengths in bits, in stream order."""
    if np.any((x_quarter < 0) | (x_quarter >= EER_SUBPIXELS * width)):
        raise ValueError("EER events must lie in the frame, at most one per pixel per frame")
    pixel = (y_quarter // EER_SUBPIXELS) * width + x_quarter // EER_SUBPIXELS
    order = np.argsort(pixel, kind="stable")
    pixel, y_quarter, x_quarter = pixel[order], y_quarter[order], x_quarter[order]
    if pixel.size and (np.any(np.diff(pixel) == 0) or pixel[0] < 0 or pixel[-1] >= height * width):
        raise ValueError("EER events must lie in the frame, at most one per pixel per frame")
    gaps = np.diff(pixel, prepend=-1) - 1  # empty pixels before each electron
    tail = height * width - (int(pixel[-1]) + 1 if pixel.size else 0)
    sub = ((x_quarter % EER_SUBPIXELS) ^ _SUBPIXEL_XOR) | (((y_quarter % EER_SUBPIXELS) ^ _SUBPIXEL_XOR) << 2)
    electrons = (gaps % _SKIP) | (sub << _RUN_BITS)
    skips = gaps // _SKIP
    # each electron is preceded by its skip codes: build the sequence by repeating
    values = np.repeat(
        np.stack([np.full_like(electrons, _SKIP), electrons], axis=1).ravel(),
        np.stack([skips, np.ones_like(skips)], axis=1).ravel(),
    )
    bits = np.where(values == _SKIP, _RUN_BITS, _CODE_BITS)
    tail_values = [_SKIP] * (tail // _SKIP) + ([tail % _SKIP] if tail % _SKIP or tail == 0 else [])
    values = np.concatenate([values, np.array(tail_values, dtype=np.int64)])
    bits = np.concatenate([bits, np.full(len(tail_values), _RUN_BITS, dtype=np.int64)])
    return values, bits


def encode_eer_frame(
    y_quarter: npt.NDArray[np.integer], x_quarter: npt.NDArray[np.integer], shape: tuple[int, int]
) -> bytes:
    """One EER frame's bytes from its electrons' positions in quarter pixels.

    Parameters
    ----------
    y_quarter, x_quarter
        ``(n,)`` positions of the electrons in units of 1/4 pixel (row ``y_quarter // 4``, column
        ``x_quarter // 4``, sub-pixel ``% 4``); any order, at most one electron per physical pixel.
    shape
        ``(h, w)`` of the frame in physical pixels.
    """
    height, width = shape
    values, bits = _codes(np.asarray(y_quarter, np.int64), np.asarray(x_quarter, np.int64), height, width)
    place = np.arange(_CODE_BITS)
    stream = ((values[:, None] >> place) & 1)[place < bits[:, None]]  # LSB first, each code's own bits
    last_start = int(bits[:-1].sum())
    # room for a whole code past the last one's start, in 64-bit words (the reader wants an even size)
    size_bytes = -(-((last_start + _CODE_BITS) // 8 + 1) // 8) * 8
    padded = np.zeros(size_bytes * 8, dtype=np.uint8)
    padded[: stream.size] = stream
    return np.packbits(padded, bitorder="little").tobytes()


def _unit_attribute(unit: str | None) -> str:
    return "" if unit is None else f' unit="{unit}"'


def eer_metadata_xml(
    frame_count: int,
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    total_dose_e_per_pixel: float,
    exposure_seconds: float,
) -> bytes:
    """The acquisition metadata of an EER file (the first page's tag 65001)."""
    metres = pixel_size_angstroms * 1e-10
    items = [
        ("numberOfFrames", None, str(frame_count)),
        ("sensorImageHeight", "pixel", str(shape[0])),
        ("sensorImageWidth", "pixel", str(shape[1])),
        ("sensorPixelSize.height", "m", f"{metres:.6e}"),
        ("sensorPixelSize.width", "m", f"{metres:.6e}"),
        ("totalDose", "e/pixel", f"{total_dose_e_per_pixel:.6g}"),
        ("meanDoseRate", "e/pixel/s", f"{total_dose_e_per_pixel / exposure_seconds:.6g}"),
        ("exposureTime", "s", f"{exposure_seconds:.6g}"),
        ("cameraName", None, "BM-Falcon (simulated)"),
        ("commercialName", None, "Falcon 4i"),
    ]
    body = "".join(
        f'<item name="{name}"{_unit_attribute(unit)}>{value}</item>' for name, unit, value in items
    )
    return f"<metadata>{body}</metadata>".encode()


def eer_events_from_counts(
    counts: npt.NDArray[np.integer], frames_per_frame: int, rng: np.random.Generator
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Electron frames whose groups of ``frames_per_frame`` sum to ``counts`` ``(t, h, w)``.

    A pixel's ``n`` electrons of a frame go to ``n`` consecutive (cyclically, from a random start)
    electron frames of its group, so no electron frame holds two in one pixel; counts above
    ``frames_per_frame`` are clipped to it. Sub-pixel positions are uniform. Returns one
    ``(y_quarter, x_quarter)`` pair per electron frame, ``t * frames_per_frame`` in all.
    """
    events = []
    _, height, width = counts.shape
    for frame in np.minimum(counts, frames_per_frame).astype(np.int64):
        start = rng.integers(0, frames_per_frame, (height, width))
        for g in range(frames_per_frame):
            y, x = np.nonzero((g - start) % frames_per_frame < frame)
            y_quarter = EER_SUBPIXELS * y + rng.integers(0, EER_SUBPIXELS, y.size)
            events.append((y_quarter, EER_SUBPIXELS * x + rng.integers(0, EER_SUBPIXELS, x.size)))
    return events


def encode_eer(
    events: Sequence[tuple[npt.NDArray[np.integer], npt.NDArray[np.integer]]],
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    exposure_seconds: float = 1.0,
) -> bytes:
    """The bytes of an EER movie: one page per frame of ``(y_quarter, x_quarter)`` electron positions."""
    frames = [encode_eer_frame(y, x, shape) for y, x in events]
    total = sum(len(y) for y, _ in events) / (shape[0] * shape[1])
    xml = eer_metadata_xml(len(frames), shape, pixel_size_angstroms, total, exposure_seconds)
    buffer = io.BytesIO()
    # tifffile writes the container and takes our bytes as already-compressed strips; it has no EER
    # encoder, so the pages are declared zlib and their Compression tag is set to EER afterwards
    with tifffile.TiffWriter(buffer, bigtiff=True) as writer:
        for index, frame in enumerate(frames):
            writer.write(
                iter([(frame, len(frame))]),
                compression="zlib",
                shape=shape,
                dtype=np.uint8,
                photometric="minisblack",
                rowsperstrip=shape[0],
                metadata=None,
                extratags=[(65001, 7, len(xml), xml, True)] if index == 0 else [],
            )
    return _set_compression(buffer.getvalue(), EER_COMPRESSION)


def _set_compression(data: bytes, code: int) -> bytes:
    """``data`` with every page's Compression tag (259) set to ``code`` (its value lies in the entry)."""
    patched = bytearray(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        for page in tif.pages:
            assert isinstance(page, tifffile.TiffPage)
            tag = page.tags[259]
            patched[tag.valueoffset : tag.valueoffset + 2] = code.to_bytes(2, "little")
    return bytes(patched)
