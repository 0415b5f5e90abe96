"""The drift plot of a corrected movie (the micrograph and its thumbnail: runtime.volume_io)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from tiltstream.processors.runtime.atomic import atomic_path

__all__ = ["write_drift_plot"]


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
