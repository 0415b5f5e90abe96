"""Estimates against the simulator's ground truth: the tolerances and the pure comparisons, once.

Used by the accuracy scoreboard (``benchmarks/accuracy.py``) and by the demo, whose summary says per
series how many tilts the pipeline got right (issue 21).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiltstream.connectors.simulator.doming import Doming, doming_shifts_pixels
from tiltstream.connectors.simulator.ground_truth import SeriesTruth, TiltTruth

__all__ = [
    "ASTIGMATISM_ANGLE_TOLERANCE_DEGREES",
    "ASTIGMATISM_CHECKED_ABOVE_ANGSTROMS",
    "ASTIGMATISM_TOLERANCE_FRACTION",
    "DEFOCUS_TOLERANCE_FRACTION",
    "DRIFT_TOLERANCE_PIXELS",
    "SeriesAgreement",
    "astigmatism_within_tolerance",
    "axis_difference_degrees",
    "defocus_error_fraction",
    "drift_and_doming_pixels",
    "drift_rms_pixels",
    "field_rms_pixels",
    "series_agreement",
    "true_displacement_pixels",
]

DRIFT_TOLERANCE_PIXELS = 0.5
DEFOCUS_TOLERANCE_FRACTION = 0.05
ASTIGMATISM_CHECKED_ABOVE_ANGSTROMS = 500.0
ASTIGMATISM_TOLERANCE_FRACTION = 0.25
ASTIGMATISM_ANGLE_TOLERANCE_DEGREES = 15.0


def drift_rms_pixels(applied_xy_pixels: np.ndarray, drift_xy_pixels: np.ndarray) -> float:
    """RMS distance over frames between the applied shifts and the negated true drift.

    Parameters
    ----------
    applied_xy_pixels
        ``(t, 2)`` shifts (x, y) a backend applied to align each frame.
    drift_xy_pixels
        ``(t, 2)`` true displacement of each frame's content (``TiltTruth.frame_shifts_pixels``).

    Both are mean-centred first: an alignment fixes the trajectory only up to a constant.
    """
    a = applied_xy_pixels - applied_xy_pixels.mean(axis=0)
    b = -(drift_xy_pixels - drift_xy_pixels.mean(axis=0))
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean()))


def true_displacement_pixels(tilt: TiltTruth, positions_xy_pixels: np.ndarray) -> np.ndarray:
    """``(t, n, 2)`` (x, y) true displacement of the content at ``n`` positions: drift plus doming."""
    doming = None if tilt.doming is None else Doming.from_dict(tilt.doming)
    return drift_and_doming_pixels(np.asarray(tilt.frame_shifts_pixels), doming, positions_xy_pixels)


def drift_and_doming_pixels(
    drift_xy_pixels: np.ndarray,  # (t, 2)
    doming: Doming | None,
    positions_xy_pixels: np.ndarray,  # (n, 2)
) -> np.ndarray:
    """``(t, n, 2)`` (x, y): the whole-frame drift plus, when there is one, the doming's field."""
    drift = np.asarray(drift_xy_pixels, dtype=np.float64)[:, None, :]  # (t, 1, 2)
    if doming is None:
        rigid: np.ndarray = np.repeat(drift, len(positions_xy_pixels), axis=1)
        return rigid
    total: np.ndarray = drift + doming_shifts_pixels(doming, positions_xy_pixels)
    return total


def field_rms_pixels(estimated_xy_pixels: np.ndarray, true_xy_pixels: np.ndarray) -> float:
    """RMS distance over frames and positions between two ``(t, n, 2)`` displacement fields, each
    mean-centred over the frames at every position (an alignment fixes each position's trajectory
    only up to a constant); the field analogue of :func:`drift_rms_pixels`."""
    a = estimated_xy_pixels - estimated_xy_pixels.mean(axis=0)
    b = true_xy_pixels - true_xy_pixels.mean(axis=0)
    return float(np.sqrt(((a - b) ** 2).sum(axis=-1).mean()))


def defocus_error_fraction(
    estimated_u_v_angstroms: tuple[float, float], true_u_v_angstroms: tuple[float, float]
) -> float:
    """``|mean estimated - mean true| / mean true`` of the defocus (positive underfocus)."""
    estimated = (estimated_u_v_angstroms[0] + estimated_u_v_angstroms[1]) / 2
    true = (true_u_v_angstroms[0] + true_u_v_angstroms[1]) / 2
    return abs(estimated - true) / abs(true)


def axis_difference_degrees(a_degrees: float, b_degrees: float) -> float:
    """The angle between two astigmatism axes (undirected lines: modulo 180°), in [0, 90]."""
    d = (a_degrees - b_degrees) % 180.0
    return min(d, 180.0 - d)


def astigmatism_within_tolerance(
    estimated_u_v_angstroms: tuple[float, float],
    estimated_angle_degrees: float,
    true_u_v_angstroms: tuple[float, float],
    true_angle_degrees: float,
) -> bool | None:
    """Whether the astigmatism is right; None where the true one is too small to be checked (<= 500 Å)."""
    true = abs(true_u_v_angstroms[0] - true_u_v_angstroms[1])
    if true <= ASTIGMATISM_CHECKED_ABOVE_ANGSTROMS:
        return None
    estimated = abs(estimated_u_v_angstroms[0] - estimated_u_v_angstroms[1])
    if abs(estimated - true) > ASTIGMATISM_TOLERANCE_FRACTION * true:
        return False
    # the major axis is U's: where the estimate swapped U and V, its major axis is 90° further
    angle = estimated_angle_degrees + (
        90.0 if estimated_u_v_angstroms[0] < estimated_u_v_angstroms[1] else 0.0
    )
    major = true_angle_degrees + (90.0 if true_u_v_angstroms[0] < true_u_v_angstroms[1] else 0.0)
    return axis_difference_degrees(angle, major) <= ASTIGMATISM_ANGLE_TOLERANCE_DEGREES


@dataclass(frozen=True)
class SeriesAgreement:
    """How many of a series' tilts the pipeline's events got right, against the truth."""

    tilt_series_id: str
    tilts: int  # counted tilts (retakes superseded) with both a motion and a CTF event
    motion_ok: int
    defocus_ok: int
    astigmatism_ok: int
    astigmatism_checked: int
    within_tolerance: int  # all three at once


def series_agreement(
    tilt_series_id: str,
    truth: SeriesTruth,
    motion_events: Iterable[dict[str, Any]],  # MovieMotionCorrected values of this series
    ctf_events: Iterable[dict[str, Any]],  # CtfEstimated values of this series
) -> SeriesAgreement:
    """Compare every counted tilt's newest motion and CTF events with its truth (by acquisition order)."""
    motion = {e["acquisition_order"]: e for e in motion_events}
    ctf = {e["acquisition_order"]: e for e in ctf_events}
    counts = {"tilts": 0, "motion": 0, "defocus": 0, "astig": 0, "checked": 0, "all": 0}
    for tilt in truth.counted_tilts():
        m, c = motion.get(tilt.z_value), ctf.get(tilt.z_value)
        if m is None or c is None:
            continue
        shifts = sorted(m["frame_shifts"], key=lambda s: s["frame_index"])
        applied = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in shifts])
        motion_ok = (
            drift_rms_pixels(applied / truth.pixel_size_angstroms, np.asarray(tilt.frame_shifts_pixels))
            <= DRIFT_TOLERANCE_PIXELS
        )
        estimated = (c["defocus_u_angstroms"], c["defocus_v_angstroms"])
        true = (tilt.defocus_u_angstroms, tilt.defocus_v_angstroms)
        defocus_ok = defocus_error_fraction(estimated, true) <= DEFOCUS_TOLERANCE_FRACTION
        astig = astigmatism_within_tolerance(
            estimated, c["astigmatism_angle_degrees"], true, tilt.astigmatism_angle_degrees
        )
        counts["tilts"] += 1
        counts["motion"] += motion_ok
        counts["defocus"] += defocus_ok
        counts["astig"] += astig is True
        counts["checked"] += astig is not None
        counts["all"] += motion_ok and defocus_ok and astig is not False
    return SeriesAgreement(
        tilt_series_id,
        counts["tilts"],
        counts["motion"],
        counts["defocus"],
        counts["astig"],
        counts["checked"],
        counts["all"],
    )
