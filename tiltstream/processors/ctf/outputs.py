"""The power-spectrum PNG: the spectrum on the left, the fitted CTF rings on the right."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from tiltstream.processors.runtime.atomic import atomic_path

__all__ = ["write_power_spectrum_png"]


def write_power_spectrum_png(path: Path, diagnostic: np.ndarray) -> None:
    """Write the ``(n, n)`` diagnostic image (values 0-1) as a grey PNG, atomically."""
    with atomic_path(path) as temporary:
        plt.imsave(temporary, np.clip(diagnostic, 0, 1), cmap="gray", vmin=0, vmax=1, format="png")
