"""Local (doming-like) motion: the specimen bulges under the beam and its surface moves out of the bulge.

Beam-induced motion is not a rigid shift: the ice domes where the beam hits it (Brilot et al. 2012), so
in projection the specimen moves radially away from the dome's centre, most in the first frames. Here
the in-plane displacement of the content seen at position ``p`` in frame ``i`` is

    u_i(p) = a_i * A * (p - c) / w * exp(1/2 - |p - c|**2 / (2 w**2))

with ``A`` the largest displacement (reached at distance ``w`` from the centre ``c``, at the last
frame) and ``a_i`` rising fast from 0 at frame 0 to 1 at the last frame. It adds to the whole-frame
drift; no polynomial of low order describes it, so a correction cannot pass by assuming one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.ndimage

__all__ = ["Doming", "doming_shifts_pixels", "random_doming", "warp_by_doming"]

#: Fraction of the exposure over which the doming rises to about two thirds of its final size.
RISE_FRACTION = 0.25


@dataclass(frozen=True)
class Doming:
    """The local motion of one movie (see the module); pixels of the movie, ``(x, y)`` order."""

    centre_xy_pixels: tuple[float, float]
    width_pixels: float
    amplitude_pixels: float
    time_profile: tuple[float, ...]  # (t,) 0 at frame 0, 1 at the last

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Doming:
        """The inverse of ``dataclasses.asdict`` (as the ground truth stores it)."""
        return cls(
            centre_xy_pixels=(float(data["centre_xy_pixels"][0]), float(data["centre_xy_pixels"][1])),
            width_pixels=float(data["width_pixels"]),
            amplitude_pixels=float(data["amplitude_pixels"]),
            time_profile=tuple(float(v) for v in data["time_profile"]),
        )


def random_doming(rng: np.random.Generator, size_pixels: int, frames: int, amplitude_pixels: float) -> Doming:
    """A dome somewhere in the central half of a square frame, its width 0.35-0.6 of the frame."""
    centre = rng.uniform(0.25, 0.75, 2) * size_pixels
    width = float(rng.uniform(0.35, 0.6)) * size_pixels
    i = np.arange(frames)
    rise = 1 - np.exp(-i / (RISE_FRACTION * frames))
    profile = rise / rise[-1] if frames > 1 else np.zeros(1)
    return Doming(
        centre_xy_pixels=(float(centre[0]), float(centre[1])),
        width_pixels=width,
        amplitude_pixels=float(amplitude_pixels),
        time_profile=tuple(float(v) for v in profile),
    )


def doming_shifts_pixels(doming: Doming, positions_xy_pixels: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Displacement ``(t, n, 2)`` (x, y) of the content seen at each of ``n`` positions ``(n, 2)``."""
    p = np.asarray(positions_xy_pixels, dtype=np.float64).reshape(-1, 2)
    offset = (p - np.asarray(doming.centre_xy_pixels)) / doming.width_pixels  # (n, 2)
    radial = offset * np.exp(0.5 - (offset**2).sum(axis=1, keepdims=True) / 2)  # (n, 2) peak 1 at r = w
    profile = np.asarray(doming.time_profile)[:, None, None]  # (t, 1, 1)
    shifts: npt.NDArray[np.float64] = profile * doming.amplitude_pixels * radial[None]
    return shifts


def warp_by_doming(
    padded: npt.NDArray[np.float32],  # (h + 2m, w + 2m)
    doming: Doming,
    frame: int,
    margin_pixels: int,
) -> npt.NDArray[np.float32]:
    """The ``(h, w)`` frame cut from ``padded`` with frame ``frame``'s doming applied.

    Output pixel ``p`` shows what the padded image holds at ``p - u(p)`` (cubic spline interpolation
    of a band-limited image), so its content is displaced by ``u(p)``.
    """
    m = margin_pixels
    h, w = padded.shape[0] - 2 * m, padded.shape[1] - 2 * m
    if doming.amplitude_pixels == 0 or doming.time_profile[frame] == 0:
        return padded[m : m + h, m : m + w]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    shift = doming_shifts_pixels(doming, np.stack([x.ravel(), y.ravel()], axis=1))[frame]  # (n, 2)
    coordinates = np.stack([y.ravel() + m - shift[:, 1], x.ravel() + m - shift[:, 0]])  # (2, n)
    warped = scipy.ndimage.map_coordinates(padded, coordinates, order=3, mode="nearest")
    result: npt.NDArray[np.float32] = warped.reshape(h, w).astype(np.float32)
    return result
