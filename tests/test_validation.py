"""check_event over every record's samples: valid values pass, each kind of bad value names its field."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiltstream.connectors.ispyb.samples import session_events
from tiltstream.streams.catalogue import EVENT_RECORDS
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.samples import sample_event
from tiltstream.streams.validation import check_event, path_problem
from tiltstream.streams.validation_rules import ValidationSettings, validation_settings


@pytest.mark.parametrize("record", EVENT_RECORDS)
@given(series=st.integers(1, 40), tilt=st.integers(0, 80))
def test_every_sample_passes(record: str, series: int, tilt: int) -> None:
    check_event(record, sample_event(record, series, tilt))
    check_event(f"tiltstream.events.{record}", sample_event(record, series, tilt))  # full names too


def test_a_whole_simulated_session_passes() -> None:
    events = list(session_events(2, 41, failed_series=1))
    assert events
    for record, value in events:
        check_event(record, value)


def _set(path: str, bad: object) -> Callable[[dict[str, Any]], None]:
    """Set the field at dotted ``path`` (``tilts[3].x`` style) to ``bad``."""

    def mutate(value: dict[str, Any]) -> None:
        *parents, last = path.replace("[", ".[").split(".")
        node: Any = value
        for part in parents:
            node = node[int(part[1:-1])] if part.startswith("[") else node[part]
        node[last] = bad

    return mutate


BAD: list[tuple[str, str, object, str]] = [
    ("MovieAcquired", "dose_e_per_angstrom2", math.nan, "not a finite number"),
    ("MovieAcquired", "dose_e_per_angstrom2", -0.5, "outside [0"),
    ("MovieAcquired", "voltage_kv", math.inf, "not a finite number"),
    ("MovieAcquired", "voltage_kv", 30.0, "outside [60, 400]"),
    ("MovieAcquired", "voltage_kv", 1000.0, "outside [60, 400]"),
    ("MovieAcquired", "tilt_angle_degrees", 9999.0, "outside [-90, 90]"),
    ("MovieAcquired", "tilt_angle_degrees", -math.inf, "not a finite number"),
    ("MovieAcquired", "pixel_size_angstroms", 0.0, "outside (0, 50]"),
    ("MovieAcquired", "pixel_size_angstroms", -1.3, "outside (0, 50]"),
    ("MovieAcquired", "pixel_size_angstroms", 51.0, "outside (0, 50]"),
    ("MovieAcquired", "amplitude_contrast", 1.5, "outside [0, 1]"),
    ("MovieAcquired", "spherical_aberration_mm", -2.7, "outside [0, 10]"),
    ("MovieAcquired", "frame_count", 0, "outside [1, 10000]"),
    ("MovieAcquired", "frame_count", 10_001, "outside [1, 10000]"),
    ("MovieAcquired", "target_defocus_micrometres", -400.0, "outside [-20, 20]"),
    ("MovieAcquired", "image_shift_x_micrometres", math.nan, "not a finite number"),
    ("MovieAcquired", "exposure_time_seconds", -1.0, "outside [0"),
    ("MovieAcquired", "movie.path", "C:\\frames\\Position_1_001.tiff", "drive letter"),
    ("MovieAcquired", "movie.path", "\\\\server\\share\\Position_1_001.tiff", "UNC path"),
    ("MovieAcquired", "movie.path", "cm40000-1\\Position_1_001.tiff", "backslash"),
    ("MovieAcquired", "movie.path", "/dls/m02/Position_1_001.tiff", "absolute"),
    ("MovieAcquired", "movie.path", "cm40000-1/../../etc/passwd", "'..' segment"),
    ("MovieAcquired", "movie.path", "", "empty path"),
    ("MovieAcquired", "movie.path", "cm40000-1/Position\x00_1.tiff", "NUL byte"),
    ("MovieAcquired", "mdoc.path", "D:\\cm40000-1\\Position_1.mdoc", "drive letter"),
    ("MovieAcquired", "movie.root", "", "not a plain name"),
    ("MovieAcquired", "movie_id", "abc\x00", "NUL byte"),
    ("MovieAcquired", "metadata.session_id", "cm40000\x00-1", "NUL byte"),
    ("MovieAcquired", "metadata.producer.instance", "pod\x00", "NUL byte"),
    ("MovieMotionCorrected", "frame_shifts[4].shift_x_angstroms", math.nan, "not a finite number"),
    ("MovieMotionCorrected", "total_motion_angstroms", -3.0, "outside [0"),
    ("MovieMotionCorrected", "binning", 0, "outside [1, 1024]"),
    ("MovieMotionCorrected", "last_frame", 20_000, "outside [0, 10000]"),
    ("CtfEstimated", "defocus_u_angstroms", 5e6, "outside [-200000, 200000]"),
    ("CtfEstimated", "fit_resolution_angstroms", math.inf, "not a finite number"),
    ("CtfEstimated", "fit_resolution_angstroms", 0.0, "outside (0, 10000]"),
    ("CtfEstimated", "astigmatism_angle_degrees", 720.0, "outside [-360, 360]"),
    ("ReconstructionRequested", "tilts[3].tilt_angle_degrees", 91.0, "outside [-90, 90]"),
    ("ReconstructionRequested", "tilts[7].micrograph.path", "..", "'..' segment"),
    ("ReconstructionRequested", "thickness_angstroms", 0.0, "outside (0, 100000]"),
    ("TomogramReconstructed", "tilt_alignments[0].refined_tilt_angle_degrees", math.nan, "not a finite"),
    ("TomogramReconstructed", "pixel_spacing_angstroms", 0.0, "outside (0, 1000]"),
    ("TomogramReconstructed", "size_z_pixels", -1, "outside [0"),
    ("TomogramDenoised", "denoised_tomogram.path", "C:\\tomo.mrc", "drive letter"),
    ("ProcessingFailed", "error_message", "cannot read x\x00.tiff", "NUL byte"),
    ("ProcessingFailed", "attempts", -1, "outside [0"),
    ("TiltSeriesAcquisitionEnded", "pixel_size_angstroms", math.nan, "not a finite number"),
    ("TiltSeriesStatus", "acquired_tilts", -2, "outside [0"),
]


@pytest.mark.parametrize(("record", "field", "bad", "reason"), BAD)
def test_each_kind_of_bad_value_is_refused_with_its_field(
    record: str, field: str, bad: object, reason: str
) -> None:
    value = copy.deepcopy(sample_event(record, 1, 5))
    _set(field, bad)(value)
    with pytest.raises(InvalidEventError) as caught:
        check_event(record, value)
    assert caught.value.record == record
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert f"{record}.{field}" in str(caught.value)


@given(angle=st.floats(allow_nan=True, allow_infinity=True))
def test_tilt_angles_pass_exactly_when_finite_and_within_90_degrees(angle: float) -> None:
    value = {**sample_event("MovieAcquired"), "tilt_angle_degrees": angle}
    valid = math.isfinite(angle) and -90.0 <= angle <= 90.0
    if valid:
        check_event("MovieAcquired", value)
    else:
        with pytest.raises(InvalidEventError, match="tilt_angle_degrees"):
            check_event("MovieAcquired", value)


@given(text=st.text())
def test_any_string_with_a_nul_byte_is_refused(text: str) -> None:
    value = {**sample_event("CtfEstimated"), "backend": text}
    if "\x00" in text:
        with pytest.raises(InvalidEventError, match="backend: contains a NUL byte"):
            check_event("CtfEstimated", value)
    else:
        check_event("CtfEstimated", value)


@pytest.mark.parametrize(
    "path",
    ["cm40000-1/Position_1_003.tiff", "a", "a/./b.mrc", "cm40000-1:Position_1/x.mrc", "a//b", "..a/b.."],
)
def test_plain_relative_posix_paths_pass(path: str) -> None:
    assert path_problem(path) is None


def test_missing_and_unknown_fields_are_left_to_the_encoder() -> None:
    value = sample_event("MovieAcquired")
    del value["voltage_kv"]
    value["stage_z_micrometres"] = math.nan  # a field of a newer schema this reader does not know
    check_event("MovieAcquired", value)


def test_the_frame_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert validation_settings().max_frame_count == 10_000  # the default this process compiled with
    check_event("MovieAcquired", {**sample_event("MovieAcquired"), "frame_count": 10_000})
    monkeypatch.setenv("TILTSTREAM_VALIDATION_MAX_FRAME_COUNT", "40000")  # EER at a facility that needs it
    assert ValidationSettings().max_frame_count == 40_000
