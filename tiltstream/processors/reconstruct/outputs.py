"""Writing volumes and stacks (MRC), their PNG views and the alignment plot, each atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mrcfile
import numpy as np

from tiltstream.processors.runtime.atomic import atomic_path

__all__ = ["read_volume", "write_alignment_plot", "write_png", "write_volume"]


def write_volume(path: Path, volume: np.ndarray, pixel_size_angstroms: float) -> None:
    """Write ``volume`` (d, h, w) or a stack (t, h, w) as float32 MRC with its voxel size."""
    with atomic_path(path) as temporary, mrcfile.new(temporary, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(volume, dtype=np.float32))
        mrc.voxel_size = pixel_size_angstroms


def write_png(path: Path, image: np.ndarray, *, max_pixels: int = 1024) -> None:
    """A grey PNG of ``image`` (h, w), binned to at most ``max_pixels`` and clipped to 1-99 %."""
    factor = max(1, int(np.ceil(max(image.shape) / max_pixels)))
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    small = image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    low, high = np.percentile(small, [1, 99])
    with atomic_path(path) as temporary:
        plt.imsave(temporary, np.clip(small, low, high), cmap="gray", format="png")


def write_alignment_plot(
    path: Path,
    tilt_angles_degrees: np.ndarray,  # (t,)
    shifts_xy_angstroms: np.ndarray,  # (t, 2)
    tilt_axis_angle_degrees: float,
    title: str,
) -> None:
    """Shifts in x and y against tilt angle, with the refined axis angle in the title."""
    figure, axes = plt.subplots(figsize=(5, 3.5), dpi=100)
    axes.plot(tilt_angles_degrees, shifts_xy_angstroms[:, 0], "-o", markersize=3, label="shift x")
    axes.plot(tilt_angles_degrees, shifts_xy_angstroms[:, 1], "-s", markersize=3, label="shift y")
    axes.set_xlabel("tilt angle (°)")
    axes.set_ylabel("shift (Å)")
    axes.set_title(f"{title}\ntilt axis {tilt_axis_angle_degrees:.2f}°", fontsize=8)
    axes.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)


def read_volume(path: Path) -> np.ndarray:
    """An MRC volume or stack as float32 (d, h, w)."""
    with mrcfile.open(path, permissive=True) as mrc:
        return np.asarray(mrc.data, dtype=np.float32)
