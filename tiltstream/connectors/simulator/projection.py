"""Analytic projection of a :class:`~.phantom.Phantom` at a tilt: phase and ice attenuation images."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tiltstream.connectors.simulator.phantom import Phantom

__all__ = ["interaction_constant", "project_phantom", "tilt_rotation", "wavelength_angstroms"]


def wavelength_angstroms(voltage_kv: float) -> float:
    """Relativistic electron wavelength in angstroms."""
    volts = voltage_kv * 1e3
    return 12.2643 / math.sqrt(volts * (1 + 0.978466e-6 * volts))


def interaction_constant(voltage_kv: float) -> float:
    """Electron interaction constant sigma in radians per (volt * angstrom)."""
    rest_kev = 510.999
    return (
        2
        * math.pi
        / (wavelength_angstroms(voltage_kv) * voltage_kv * 1e3)
        * (rest_kev + voltage_kv)
        / (2 * rest_kev + voltage_kv)
    )


def tilt_rotation(tilt_degrees: float, tilt_axis_angle_degrees: float) -> npt.NDArray[np.float64]:
    """``(3, 3)`` rotation by ``tilt`` about the in-plane axis at ``tilt_axis_angle`` from x."""
    phi, theta = math.radians(tilt_axis_angle_degrees), math.radians(tilt_degrees)
    a = np.array([math.cos(phi), math.sin(phi), 0.0])
    cross = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return math.cos(theta) * np.eye(3) + math.sin(theta) * cross + (1 - math.cos(theta)) * np.outer(a, a)


def project_phantom(
    phantom: Phantom,
    *,
    tilt_degrees: float,
    tilt_axis_angle_degrees: float,
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    specimen_shift_angstroms: tuple[float, float],
    voltage_kv: float,
    inelastic_mean_free_path_angstroms: float,
    texture_radians: float,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Project the phantom along the beam after tilting it.

    Parameters
    ----------
    shape
        ``(h, w)`` of the images.
    specimen_shift_angstroms
        Translation of the projected specimen (x, y): the tilt series' per-tilt image shift.
    texture_radians
        Standard deviation per pixel of the phase of amorphous ice at the nominal thickness (a white
        texture whose variance grows with the path length; it makes Thon rings visible).
    rng
        Draws the ice texture.

    Returns
    -------
    phase, attenuation
        ``(h, w)`` phase shift in radians relative to ice, and the fraction of electrons that pass
        the slab without inelastic scattering (zero-loss).
    """
    h, w = shape
    sigma = interaction_constant(voltage_kv)
    phase = np.zeros(shape, np.float32)  # (h, w)
    rot = tilt_rotation(tilt_degrees, tilt_axis_angle_degrees)
    if len(phantom):
        xy = phantom.centers_angstroms @ rot.T  # (n, 3)
        cols = (xy[:, 0] + specimen_shift_angstroms[0]) / pixel_size_angstroms + (w - 1) / 2
        rows = (xy[:, 1] + specimen_shift_angstroms[1]) / pixel_size_angstroms + (h - 1) / 2
        rad = phantom.radii_angstroms / pixel_size_angstroms
        visible = (cols + rad >= 0) & (cols - rad <= w - 1) & (rows + rad >= 0) & (rows - rad <= h - 1)
        for i in np.flatnonzero(visible):
            _add_sphere(
                phase,
                float(cols[i]),
                float(rows[i]),
                float(phantom.radii_angstroms[i]),
                float(phantom.inner_radii_angstroms[i]),
                float(sigma * phantom.potential_volts[i]),
                pixel_size_angstroms,
            )
    cos_t = max(math.cos(math.radians(tilt_degrees)), 0.1)
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) * pixel_size_angstroms
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) * pixel_size_angstroms
    gx, gy = phantom.thickness_gradient_per_angstrom
    path = phantom.thickness_angstroms / cos_t * (1 + np.float32(gy) * y[:, None] + np.float32(gx) * x)
    attenuation = np.exp(-path / np.float32(inelastic_mean_free_path_angstroms)).astype(np.float32)
    if texture_radians > 0:
        texture = rng.standard_normal(shape, dtype=np.float32)  # (h, w)
        texture *= np.sqrt(path / np.float32(phantom.thickness_angstroms)) * np.float32(texture_radians)
        phase += texture
    return phase, attenuation


def _add_sphere(
    image: npt.NDArray[np.float32],
    col: float,
    row: float,
    radius_angstroms: float,
    inner_radius_angstroms: float,
    radians_per_angstrom: float,
    pixel_size_angstroms: float,
) -> None:
    """Add the projected thickness of a sphere (or shell) times its phase per angstrom, in place."""
    h, w = image.shape
    rp = radius_angstroms / pixel_size_angstroms
    r0, r1 = max(math.floor(row - rp), 0), min(math.ceil(row + rp) + 1, h)
    c0, c1 = max(math.floor(col - rp), 0), min(math.ceil(col + rp) + 1, w)
    if r0 >= r1 or c0 >= c1:
        return
    dy = ((np.arange(r0, r1, dtype=np.float32) - row) * pixel_size_angstroms) ** 2
    dx = ((np.arange(c0, c1, dtype=np.float32) - col) * pixel_size_angstroms) ** 2
    d2 = dy[:, None] + dx[None, :]  # (bh, bw)
    chord = np.sqrt(np.maximum(np.float32(radius_angstroms**2) - d2, 0))
    if inner_radius_angstroms > 0:
        chord -= np.sqrt(np.maximum(np.float32(inner_radius_angstroms**2) - d2, 0))
    image[r0:r1, c0:c1] += np.float32(2 * radians_per_angstrom) * chord
