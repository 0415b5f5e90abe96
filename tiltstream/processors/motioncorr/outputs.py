"""Writing the micrograph (MRC), its PNG thumbnail and the drift plot, each atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mrcfile
import numpy as np

from tiltstream.processors.runtime.atomic import atomic_path

__all__ = ["write_drift_plot", "write_mrc", "write_thumbnail"]


def write_mrc(path: Path, image: np.ndarray, pixel_size_angstroms: float) -> None:
    """Write ``image`` (h, w) as float32 MRC with its pixel size in the header."""
    with atomic_path(path) as temporary, mrcfile.new(temporary, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(image, dtype=np.float32))
        mrc.voxel_size = pixel_size_angstroms


def write_thumbnail(path: Path, image: np.ndarray, max_pixels: int = 512) -> None:
    """A grey PNG of ``image`` (h, w), binned to at most ``max_pixels`` and clipped to 1-99 %."""
    factor = max(1, int(np.ceil(max(image.shape) / max_pixels)))
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    small = image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    low, high = np.percentile(small, [1, 99])
    with atomic_path(path) as temporary:
        plt.imsave(temporary, np.clip(small, low, high), cmap="gray", format="png")


def write_drift_plot(path: Path, shifts_angstroms: np.ndarray, title: str) -> None:
    """Plot the trajectory ``(t, 2)`` (x, y) in angstroms, frames numbered from 0."""
    figure, axes = plt.subplots(figsize=(4, 4), dpi=100)
    axes.plot(shifts_angstroms[:, 0], shifts_angstroms[:, 1], "-o", markersize=3)
    axes.annotate("0", shifts_angstroms[0])
    axes.set_xlabel("shift x (Å)")
    axes.set_ylabel("shift y (Å)")
    axes.set_title(title, fontsize=8)
    axes.set_aspect("equal", adjustable="datalim")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
