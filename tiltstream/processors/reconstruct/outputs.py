"""The alignment plot of a reconstruction (volumes, stacks and PNG views: runtime.volume_io)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from tiltstream.processors.runtime.atomic import atomic_path

__all__ = ["write_alignment_plot"]


def write_alignment_plot(
    path: Path,
    tilt_angles_degrees: np.ndarray,  # (t,)
    shifts_xy_angstroms: np.ndarray,  # (t, 2)
    tilt_axis_angle_degrees: float,
    title: str,
    left_out_degrees: np.ndarray | None = None,  # (e,) nominal angles of the tilts the alignment left out
) -> None:
    """Shifts in x and y against tilt angle, with the refined axis angle in the title.

    Tilts the reconstruction left out (``left_out_degrees``) are dotted vertical lines.
    """
    figure, axes = plt.subplots(figsize=(5, 3.5), dpi=100)
    axes.plot(tilt_angles_degrees, shifts_xy_angstroms[:, 0], "-o", markersize=3, label="shift x")
    axes.plot(tilt_angles_degrees, shifts_xy_angstroms[:, 1], "-s", markersize=3, label="shift y")
    for index, angle in enumerate(left_out_degrees if left_out_degrees is not None else []):
        axes.axvline(float(angle), color="red", linestyle=":", label="left out" if index == 0 else None)
    axes.set_xlabel("tilt angle (°)")
    axes.set_ylabel("shift (Å)")
    axes.set_title(f"{title}\ntilt axis {tilt_axis_angle_degrees:.2f}°", fontsize=8)
    axes.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
