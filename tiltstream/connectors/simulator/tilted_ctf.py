"""The CTF of a tilted specimen: defocus changes across the image with the height of the tilted slab.

A plane through the specimen's centre, tilted with :func:`~.projection.tilt_rotation`, has normal
``n = R e_z``; above image position ``(x, y)`` it lies at height ``z = -(n_x x + n_y y) / n_z``. The
objective sees a point at height ``z`` with defocus ``nominal - z`` (higher means closer to focus),
so every band of equal height gets its own CTF. The image is filtered once per band of
``band_angstroms`` and each pixel takes the result of its own band.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
import scipy.fft

from tiltstream.connectors.simulator.imaging import CtfParameters, ctf_2d
from tiltstream.connectors.simulator.projection import tilt_rotation

__all__ = ["apply_tilted_ctf", "specimen_height_angstroms"]


def specimen_height_angstroms(
    shape: tuple[int, int], pixel_size_angstroms: float, tilt_degrees: float, tilt_axis_angle_degrees: float
) -> npt.NDArray[np.float64]:
    """``(h, w)`` height of the tilted specimen's mid-plane above each pixel, in Å."""
    normal = tilt_rotation(tilt_degrees, tilt_axis_angle_degrees) @ np.array([0.0, 0.0, 1.0])
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2)[:, None] * pixel_size_angstroms
    x = (np.arange(w) - (w - 1) / 2)[None, :] * pixel_size_angstroms
    height: npt.NDArray[np.float64] = -(normal[0] * x + normal[1] * y) / normal[2]
    return height


def apply_tilted_ctf(
    phase: npt.NDArray[np.float32],  # (h, w) projected phase
    pixel_size_angstroms: float,
    tilt_degrees: float,
    tilt_axis_angle_degrees: float,
    ctf: CtfParameters,
    band_angstroms: float = 50.0,
) -> npt.NDArray[np.float32]:
    """The image contrast ``ifft(CTF(defocus at each pixel) * fft(phase))`` of a tilted specimen."""
    shape = (phase.shape[0], phase.shape[1])
    height = specimen_height_angstroms(shape, pixel_size_angstroms, tilt_degrees, tilt_axis_angle_degrees)
    bands = np.round(height / band_angstroms).astype(int)
    spectrum = scipy.fft.rfft2(phase)
    out = np.zeros(shape, np.float32)
    for band in np.unique(bands):
        offset = float(band) * band_angstroms
        local = dataclasses.replace(
            ctf,
            defocus_u_angstroms=ctf.defocus_u_angstroms - offset,
            defocus_v_angstroms=ctf.defocus_v_angstroms - offset,
        )
        filtered = scipy.fft.irfft2(spectrum * ctf_2d(shape, pixel_size_angstroms, local), s=shape)
        mask = bands == band
        out[mask] = filtered[mask]
    return out
