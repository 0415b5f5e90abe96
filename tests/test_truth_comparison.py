"""The demo's comparison of motion and CTF events with the simulator's truth (pure, known answers)."""

from __future__ import annotations

from typing import Any

from tiltstream.connectors.simulator.ground_truth import SeriesTruth, TiltTruth
from tiltstream.connectors.simulator.truth_comparison import series_agreement

PIXEL = 2.0


def _tilt(z: int, drift: list[list[float]], superseded: bool = False) -> TiltTruth:
    return TiltTruth(
        z_value=z, scheme_index=z, movie=f"frames/m{z}.tif", nominal_tilt_angle_degrees=3.0 * z,
        true_tilt_angle_degrees=3.0 * z, defocus_u_angstroms=31000.0, defocus_v_angstroms=29000.0,
        astigmatism_angle_degrees=20.0, dose_e_per_angstrom2=3.0, prior_dose_e_per_angstrom2=3.0 * z,
        specimen_shift_angstroms=[0.0, 0.0], frame_shifts_pixels=drift, acquired_at="2026-12-04T10:00:00Z",
        superseded_by_z_value=9 if superseded else None,
    )  # fmt: skip


def _truth(tilts: list[TiltTruth]) -> SeriesTruth:
    return SeriesTruth(
        session_id="cm1-1", position_name="Position_1", mdoc="Position_1.mdoc", phantom="p.npz",
        scheme="dose-symmetric", scheme_angles_degrees=[], nominal_tilt_axis_angle_degrees=85.0,
        true_tilt_axis_angle_degrees=85.0, tilt_angle_offset_degrees=0.0, pixel_size_angstroms=PIXEL,
        voltage_kv=300.0, spherical_aberration_mm=2.7, amplitude_contrast=0.07, image_size_pixels=512,
        frames=3, movie_format="tiff", image_shift_micrometres=[0.0, 0.0], tilts=tilts,
    )  # fmt: skip


def _motion(z: int, applied_pixels: list[list[float]]) -> dict[str, Any]:
    shifts = [
        {"frame_index": i, "shift_x_angstroms": x * PIXEL, "shift_y_angstroms": y * PIXEL}
        for i, (x, y) in enumerate(applied_pixels)
    ]
    return {"acquisition_order": z, "frame_shifts": shifts[::-1]}  # order on the wire is not assumed


def _ctf(z: int, u: float, v: float, angle: float) -> dict[str, Any]:
    return {
        "acquisition_order": z,
        "defocus_u_angstroms": u,
        "defocus_v_angstroms": v,
        "astigmatism_angle_degrees": angle,
    }


def test_each_counted_tilt_is_scored_on_drift_defocus_and_astigmatism() -> None:
    drift = [[0.0, 0.0], [1.0, 0.5], [2.0, 1.0]]
    negated_plus_constant = [[5.0 - x, 3.0 - y] for x, y in drift]  # an alignment's constant is free
    truth = _truth([_tilt(0, drift), _tilt(1, drift), _tilt(2, drift), _tilt(3, drift, superseded=True)])
    motion = [
        _motion(0, negated_plus_constant),
        _motion(1, [[x + 1.5, y] for x, y in negated_plus_constant[:1]] + negated_plus_constant[1:]),
        _motion(2, negated_plus_constant),
        _motion(3, negated_plus_constant),
    ]
    ctf = [
        _ctf(0, 31200.0, 28900.0, 200.0),  # 200° is 20° as an axis
        _ctf(1, 31000.0, 29000.0, 20.0),
        _ctf(2, 36000.0, 34000.0, 20.0),  # 17 % too deep
        _ctf(3, 31000.0, 29000.0, 20.0),
    ]
    agreement = series_agreement("cm1-1:Position_1", truth, motion, ctf)
    assert agreement.tilts == 3  # the superseded retake does not count
    assert agreement.motion_ok == 2  # tilt 1's first frame is 1.5 px off: RMS 0.71 px
    assert agreement.defocus_ok == 2
    assert (agreement.astigmatism_ok, agreement.astigmatism_checked) == (3, 3)
    assert agreement.within_tolerance == 1


def test_a_tilt_without_its_ctf_event_is_not_counted() -> None:
    drift = [[0.0, 0.0], [1.0, 1.0]]
    truth = _truth([_tilt(0, drift), _tilt(1, drift)])
    agreement = series_agreement("s", truth, [_motion(0, drift), _motion(1, drift)], [_ctf(0, 3e4, 3e4, 0)])
    assert agreement.tilts == 1
    assert agreement.motion_ok == 0  # not negated: twice the drift off
    assert agreement.astigmatism_checked == 1
