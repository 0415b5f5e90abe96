"""Reading the micrographs a request names into one stack, in tilt order, excluded tilts left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tiltstream.processors.runtime.data_roots import DataRoots
from tiltstream.processors.runtime.errors import CorruptInputError, ImpossibleParametersError
from tiltstream.processors.runtime.volume_io import read_mrc

__all__ = ["TiltStack", "read_tilt_stack", "used_tilts"]


@dataclass(frozen=True)
class TiltStack:
    """Micrographs of the tilts used, sorted by tilt angle, and their even- and odd-frame halves."""

    images: np.ndarray  # (t, h, w) float32
    tilts: list[dict[str, Any]]  # the request's ReconstructionTilt values, same order
    #: (even (t, h, w), odd (t, h, w)) frame sums of the same tilts; None unless every used tilt has both
    halves: tuple[np.ndarray, np.ndarray] | None = None


def used_tilts(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's tilts that are not excluded and have a micrograph, sorted by tilt angle."""
    usable = [t for t in request["tilts"] if not t["excluded"] and t.get("micrograph") is not None]
    return sorted(usable, key=lambda t: (float(t["tilt_angle_degrees"]), int(t["acquisition_order"])))


def read_tilt_stack(
    request: dict[str, Any], roots: DataRoots, minimum_tilts: int = 5, halves: bool = True
) -> TiltStack:
    """Read every used tilt's micrograph and, when ``halves`` and every used tilt names both, its
    even- and odd-frame sums (a series where some tilts have none reads none: no frame halves).

    Raises
    ------
    ImpossibleParametersError
        Fewer than ``minimum_tilts`` usable tilts, or a non-positive pixel size.
    CorruptInputError
        A micrograph or a named half is missing, unreadable, not 2-D, or not the size of the others.
    PathOutsideRootError
        A data path leads outside its root.
    NotRegularFileError
        A micrograph path names a FIFO, device, socket or directory.
    """
    if float(request["pixel_size_angstroms"]) <= 0:
        raise ImpossibleParametersError(f"pixel_size_angstroms={request['pixel_size_angstroms']}")
    tilts = used_tilts(request)
    if len(tilts) < minimum_tilts:
        raise ImpossibleParametersError(
            f"{len(tilts)} usable tilts of {len(request['tilts'])}: at least {minimum_tilts} needed"
        )
    images = _read_images(roots, tilts, "micrograph")
    with_halves = halves and all(t.get("micrograph_even") and t.get("micrograph_odd") for t in tilts)
    if not with_halves:
        return TiltStack(images, tilts)
    even, odd = (
        _read_images(roots, tilts, field, images.shape[1:]) for field in ("micrograph_even", "micrograph_odd")
    )
    return TiltStack(images, tilts, (even, odd))


def _read_images(
    roots: DataRoots, tilts: list[dict[str, Any]], field: str, shape: tuple[int, ...] | None = None
) -> np.ndarray:  # (t, h, w)
    """The 2-D images the tilts name in ``field``, all of one shape (``shape`` when given)."""
    images: list[np.ndarray] = []
    for tilt in tilts:
        where = roots.where(tilt[field])
        try:
            data = read_mrc(roots.open_input(tilt[field]), permissive=True)
        except FileNotFoundError as exc:
            raise CorruptInputError(f"{field} of tilt {tilt['acquisition_order']} missing: {where}") from exc
        except OSError as exc:
            raise CorruptInputError(f"{field} {where} unreadable: {exc}") from exc
        if data.ndim == 3 and data.shape[0] == 1:
            data = data[0]
        expected = shape or (images[0].shape if images else data.shape)
        if data.ndim != 2 or data.shape != expected:
            raise CorruptInputError(f"{field} {where} has shape {data.shape}, not {expected}")
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if bad:
            raise CorruptInputError(f"{field} {where} is not finite: {bad} NaN or infinite pixels")
        images.append(data)
    return np.stack(images)
