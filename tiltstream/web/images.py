"""Images the processors do not write, made on demand: slices through a volume, the CTF plot.

Slices are read from the MRC file memory-mapped (only the slice is touched), binned to at most
``max_pixels`` on a side, clipped to the 1-99 % percentiles and encoded as 8-bit grey PNG. They are cached
by file, modification time, size and z, so a slider dragged back and forth reads each slice once.
"""

from __future__ import annotations

import io
import math
from collections import OrderedDict
from collections.abc import Sequence
from html import escape
from pathlib import Path
from threading import Lock

import mrcfile
import numpy as np
from PIL import Image

__all__ = ["SliceRenderer", "ctf_plot_svg", "volume_depth"]


def volume_depth(path: Path) -> int:
    """Slices along z of the MRC volume at ``path`` (read from its header)."""
    with mrcfile.open(path, header_only=True, permissive=True) as mrc:
        return int(mrc.header.nz)


def _png(image: np.ndarray, max_pixels: int) -> bytes:
    factor = max(1, math.ceil(max(image.shape) / max_pixels))
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    small = image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    low, high = np.percentile(small, [1, 99])
    scaled = np.clip((small - low) / (high - low if high > low else 1.0), 0, 1)
    # MRC rows go up the image (y from the bottom); show them as the processors' previews do
    grey = Image.fromarray(np.round(scaled[::-1] * 255).astype(np.uint8), mode="L")
    out = io.BytesIO()
    grey.save(out, format="PNG", optimize=False)
    return out.getvalue()


class SliceRenderer:
    """PNG slices of MRC volumes, with a bounded cache.

    Parameters
    ----------
    max_pixels
        Longest side of a slice image.
    entries
        Slices kept in memory (0: none).
    """

    def __init__(self, max_pixels: int = 512, entries: int = 256) -> None:
        self.max_pixels = max_pixels
        self.entries = entries
        self._cache: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._lock = Lock()

    def slice_png(self, path: Path, z: int) -> bytes:
        """Slice ``z`` of the volume at ``path`` as PNG.

        Raises
        ------
        IndexError
            When ``z`` is outside the volume.
        """
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, z)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
            data = mrc.data
            if data is None or data.ndim != 3 or not 0 <= z < data.shape[0]:
                raise IndexError(f"no slice {z} in {path.name}")
            png = _png(np.asarray(data[z], dtype=np.float32), self.max_pixels)
        if self.entries:
            with self._lock:
                self._cache[key] = png
                while len(self._cache) > self.entries:
                    self._cache.popitem(last=False)
        return png


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    return low - pad, high + pad


def ctf_plot_svg(
    angles: Sequence[float], defocus_um: Sequence[float | None], resolution_a: Sequence[float | None]
) -> str:
    """Defocus (µm, left axis, blue) and CTF fit resolution (Å, right axis, orange) against tilt angle."""
    width, height, left, right, top, bottom = 560, 300, 60, 60, 20, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>',
    ]
    points = [(a, d, r) for a, d, r in zip(angles, defocus_um, resolution_a, strict=True)]
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no CTF estimates yet</text>'
        )
        return "".join([*parts, "</svg>"])
    x_low, x_high = _span([p[0] for p in points])

    def x_at(value: float) -> float:
        return left + (value - x_low) / (x_high - x_low) * plot_w

    for tick in _ticks(x_low, x_high):
        x = x_at(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#444"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 17}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">tilt angle (°)</text>')
    series = (
        ([(a, d) for a, d, _ in points if d is not None], "#1f5fbf", "defocus (µm)", left, "end", -6),
        (
            [(a, r) for a, _, r in points if r is not None],
            "#d9730d",
            "fit resolution (Å)",
            left + plot_w,
            "start",
            6,
        ),
    )
    for values, colour, label, axis_x, anchor, offset in series:
        if not values:
            continue
        y_low, y_high = _span([v for _, v in values])

        def y_at(value: float, low: float = y_low, high: float = y_high) -> float:
            return top + plot_h - (value - low) / (high - low) * plot_h

        for tick in _ticks(y_low, y_high):
            y = y_at(tick)
            parts.append(
                f'<text x="{axis_x + offset}" y="{y + 4:.1f}" text-anchor="{anchor}" fill="{colour}">'
                f"{tick:g}</text>"
            )
        ordered = sorted(values)
        line = " ".join(f"{x_at(a):.1f},{y_at(v):.1f}" for a, v in ordered)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts += [
            f'<circle cx="{x_at(a):.1f}" cy="{y_at(v):.1f}" r="3" fill="{colour}"/>' for a, v in ordered
        ]
        label_x = 14 if anchor == "end" else width - 14
        parts.append(
            f'<text transform="translate({label_x},{top + plot_h / 2}) rotate(-90)" text-anchor="middle" '
            f'fill="{colour}">{escape(label)}</text>'
        )
    return "".join([*parts, "</svg>"])
