"""A seeded 3-D phantom of a vitreous specimen: an ice slab with particles, vesicles and gold beads.

The phantom is a list of spheres and spherical shells (their potential relative to ice) in a slab, so
that its projection at any tilt and any pixel size is analytic (see :mod:`.projection`) and a voxel
volume can be rendered at any sampling for comparison with reconstructions (:func:`render_volume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Phantom", "load_phantom", "make_phantom", "render_volume", "save_phantom"]

FloatArray = npt.NDArray[np.float64]

#: Mean inner potential above that of vitreous ice, in volts.
PROTEIN_VOLTS = 2.6
MEMBRANE_VOLTS = 2.0
GOLD_VOLTS = 25.0
KIND_PARTICLE, KIND_MEMBRANE, KIND_GOLD = 0, 1, 2


@dataclass(frozen=True)
class Phantom:
    """Spheres and shells in an ice slab centred on z = 0 (specimen coordinates in angstroms).

    Attributes
    ----------
    centers_angstroms
        ``(n, 3)`` x, y, z of each sphere; x and y lie in the grid plane, z along the beam at 0°.
    radii_angstroms, inner_radii_angstroms
        ``(n,)`` outer radius and inner radius (0 for solid spheres, ``radius - width`` for membranes).
    potential_volts
        ``(n,)`` potential above ice.
    kinds
        ``(n,)`` 0 particle, 1 membrane, 2 gold bead.
    thickness_angstroms
        Ice thickness at the centre.
    thickness_gradient_per_angstrom
        ``(2,)`` relative change of thickness per angstrom along x and y (a slightly wedged slab).
    """

    centers_angstroms: FloatArray
    radii_angstroms: FloatArray
    inner_radii_angstroms: FloatArray
    potential_volts: FloatArray
    kinds: npt.NDArray[np.int8]
    thickness_angstroms: float
    thickness_gradient_per_angstrom: FloatArray

    def __len__(self) -> int:
        return int(self.radii_angstroms.shape[0])


def make_phantom(
    rng: np.random.Generator,
    *,
    half_extent_angstroms: float,
    thickness_angstroms: float,
    particles_per_square_micrometre: float,
    vesicles_per_square_micrometre: float,
    gold_beads_per_square_micrometre: float,
) -> Phantom:
    """Draw a phantom covering the square ``±half_extent`` in x and y.

    Particles are compact clusters of 3-5 spheres (25-60 Å) anywhere in the slab, vesicles are 40 Å
    thick membranes (radius 250-800 Å, smaller than the slab), gold beads (10 nm) sit on both surfaces.
    """
    area_um2 = (2 * half_extent_angstroms / 1e4) ** 2
    half_t = thickness_angstroms / 2
    centers: list[FloatArray] = []
    radii: list[FloatArray] = []
    inner: list[FloatArray] = []
    volts: list[FloatArray] = []
    kinds: list[npt.NDArray[np.int8]] = []

    def add(c: FloatArray, r: FloatArray, ri: FloatArray, v: float, kind: int) -> None:
        centers.append(c)
        radii.append(r)
        inner.append(ri)
        volts.append(np.full(r.shape, v))
        kinds.append(np.full(r.shape, kind, np.int8))

    n_particles = rng.poisson(particles_per_square_micrometre * area_um2)
    if n_particles:
        sub = rng.integers(3, 6, n_particles)  # spheres per particle
        owner = np.repeat(np.arange(n_particles), sub)  # (m,)
        r = rng.uniform(25.0, 60.0, owner.size)
        base = np.column_stack(
            [
                rng.uniform(-half_extent_angstroms, half_extent_angstroms, (n_particles, 2)),
                rng.uniform(-half_t + 120, half_t - 120, n_particles),
            ]
        )
        offsets = rng.normal(0.0, 30.0, (owner.size, 3))
        c = base[owner] + offsets
        c[:, 2] = np.clip(c[:, 2], -half_t + r, half_t - r)
        add(c, r, np.zeros_like(r), PROTEIN_VOLTS, KIND_PARTICLE)
    n_vesicles = rng.poisson(vesicles_per_square_micrometre * area_um2)
    if n_vesicles:
        r = np.minimum(rng.uniform(250.0, 800.0, n_vesicles), half_t - 30)
        c = np.column_stack(
            [
                rng.uniform(-half_extent_angstroms, half_extent_angstroms, (n_vesicles, 2)),
                rng.uniform(-1, 1, n_vesicles) * (half_t - r),
            ]
        )
        add(c, r, r - 40.0, MEMBRANE_VOLTS, KIND_MEMBRANE)
    n_gold = rng.poisson(gold_beads_per_square_micrometre * area_um2)
    if n_gold:
        r = np.full(n_gold, 50.0)
        side = rng.choice([-1.0, 1.0], n_gold)
        c = np.column_stack(
            [rng.uniform(-half_extent_angstroms, half_extent_angstroms, (n_gold, 2)), side * (half_t + r)]
        )
        add(c, r, np.zeros_like(r), GOLD_VOLTS, KIND_GOLD)
    empty = np.zeros((0,))
    return Phantom(
        centers_angstroms=np.concatenate(centers) if centers else np.zeros((0, 3)),
        radii_angstroms=np.concatenate(radii) if radii else empty,
        inner_radii_angstroms=np.concatenate(inner) if inner else empty,
        potential_volts=np.concatenate(volts) if volts else empty,
        kinds=np.concatenate(kinds) if kinds else np.zeros((0,), np.int8),
        thickness_angstroms=float(thickness_angstroms),
        thickness_gradient_per_angstrom=rng.normal(0.0, 2e-5, 2),
    )


def render_volume(
    phantom: Phantom, shape: tuple[int, int, int], voxel_size_angstroms: float
) -> npt.NDArray[np.float32]:
    """Voxelise the phantom's potential above ice, centred on the origin.

    Parameters
    ----------
    shape
        ``(z, y, x)`` voxels.
    voxel_size_angstroms
        Sampling; use the reconstruction's pixel size to compare with a tomogram.

    Returns
    -------
    numpy.ndarray
        ``(z, y, x)`` potential in volts (float32).
    """
    volume = np.zeros(shape, np.float32)  # (z, y, x)
    centre = (np.asarray(shape[::-1], dtype=np.float64) - 1) / 2  # x, y, z
    grids = [np.arange(n) for n in shape[::-1]]
    for c, r, ri, v in zip(
        phantom.centers_angstroms,
        phantom.radii_angstroms,
        phantom.inner_radii_angstroms,
        phantom.potential_volts,
        strict=True,
    ):
        cv = c / voxel_size_angstroms + centre
        rv = r / voxel_size_angstroms
        lo = np.maximum(np.floor(cv - rv).astype(int), 0)
        hi = np.minimum(np.ceil(cv + rv).astype(int) + 1, shape[::-1])
        if np.any(hi <= lo):
            continue
        x, y, z = (g[a:b] - cc for g, a, b, cc in zip(grids, lo, hi, cv, strict=True))
        d2 = z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2
        inside = (d2 <= rv**2) & (d2 >= (ri / voxel_size_angstroms) ** 2)
        volume[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]] += np.float32(v) * inside
    return volume


def save_phantom(phantom: Phantom, path: Path) -> None:
    """Write the phantom as a NumPy ``.npz`` archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        centers_angstroms=phantom.centers_angstroms,
        radii_angstroms=phantom.radii_angstroms,
        inner_radii_angstroms=phantom.inner_radii_angstroms,
        potential_volts=phantom.potential_volts,
        kinds=phantom.kinds,
        thickness_angstroms=np.float64(phantom.thickness_angstroms),
        thickness_gradient_per_angstrom=phantom.thickness_gradient_per_angstrom,
    )


def load_phantom(path: Path) -> Phantom:
    """Read a phantom written by :func:`save_phantom`."""
    with np.load(path) as data:
        return Phantom(
            centers_angstroms=data["centers_angstroms"],
            radii_angstroms=data["radii_angstroms"],
            inner_radii_angstroms=data["inner_radii_angstroms"],
            potential_volts=data["potential_volts"],
            kinds=data["kinds"],
            thickness_angstroms=float(data["thickness_angstroms"]),
            thickness_gradient_per_angstrom=data["thickness_gradient_per_angstrom"],
        )
