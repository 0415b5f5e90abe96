"""The source's mdoc reading on real SerialEM files (tests/data/mdoc, sources in its README) and Tomo 5's
layout: the writer's own tilt-axis field, unknown doses, local times, names, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mdocfile
import pytest

from tiltstream.connectors.source.errors import MissingSessionValueError, NotATiltSeriesError
from tiltstream.connectors.source.mdoc import parse_mdoc, read_mdoc, series_name
from tiltstream.connectors.source.parameters import SessionParameters

DATA = Path(__file__).parent / "data" / "mdoc"
EMBL = DATA / "mdocfile_tilt_series.mdoc"
EBIC = DATA / "murfey_chrom_07_ts_010.mrc.mdoc"

#: A Tomography 5 mdoc as its layout is (FACTS.md; Murfey's Tomo context): the axis in RotationAngle.
TOMO5 = """DataMode = 6
ImageSize = 4096 4096
ImageFile = Position_1.mrc
PixelSpacing = 2.93
Voltage = 300.00

[T = Tomography: TITAN52337180    20-Oct-2023  22:41:15]

[T =   TiltAxisAngle = -176.20  Binning = 1  SpotSize = 6]

[ZValue = 0]
TiltAngle = -0.01
ExposureDose = 3.05
RotationAngle = 86.20
PriorRecordDose = 0.00
SubFramePath = D:\\\\Tomo5\\\\Position_1_001_-0.01_20231020_224130_EER.eer
NumSubFrames = 1200
DateTime = 20-Oct-2023  22:41:30

[ZValue = 1]
TiltAngle = 2.99
ExposureDose = 3.05
RotationAngle = 86.20
PriorRecordDose = 3.05
SubFramePath = D:\\\\Tomo5\\\\Position_1_002_2.99_20231020_224212_EER.eer
NumSubFrames = 1200
DateTime = 20-Oct-2023  22:42:12
"""


def test_serialem_axis_comes_from_the_header_not_rotation_angle() -> None:
    with_voltage = SessionParameters(voltage_kv=300)
    embl = read_mdoc(EMBL, with_voltage)
    assert embl.writer == "serialem"
    assert embl.tilt_axis_angle_degrees == 85.3
    assert {t.rotation_angle_degrees for t in embl.tilts} == {175.3}  # what the old fallback took
    ebic = read_mdoc(EBIC)
    assert (ebic.writer, ebic.tilt_axis_angle_degrees, ebic.tilt_axis_source) == ("serialem", 83.8, "mdoc")
    assert {t.rotation_angle_degrees for t in ebic.tilts} == {173.818}


def test_serialem_without_the_axis_line_waits_for_the_session_axis_never_rotation_angle() -> None:
    text = EBIC.read_text().replace("[T = Tilt axis angle = 83.8, binning = 1  spot = 10  camera = 1]", "")
    with pytest.raises(MissingSessionValueError, match="tilt_axis_angle_degrees") as refused:
        parse_mdoc(text, "TS.mdoc")
    assert "RotationAngle is not the tilt axis" in str(refused.value)
    info = parse_mdoc(text, "TS.mdoc", SessionParameters(version=3, tilt_axis_angle_degrees=84.1))
    assert (info.tilt_axis_angle_degrees, info.tilt_axis_source, info.parameters_version) == (
        84.1,
        "session",
        3,
    )


def test_tomo5_axis_comes_from_rotation_angle_not_the_header() -> None:
    info = parse_mdoc(TOMO5, "Position_1.mdoc")
    assert info.writer == "tomo5"
    assert info.tilt_axis_angle_degrees == 86.2  # not the header's -176.2
    assert [t.sub_frame_name for t in info.tilts] == [
        "Position_1_001_-0.01_20231020_224130_EER.eer",
        "Position_1_002_2.99_20231020_224212_EER.eer",
    ]
    assert [t.dose_source for t in info.tilts] == ["mdoc", "mdoc"]
    no_rotation = TOMO5.replace("RotationAngle = 86.20\n", "")
    with pytest.raises(MissingSessionValueError, match="RotationAngle"):
        parse_mdoc(no_rotation, "Position_1.mdoc")  # the header's TiltAxisAngle is never taken


def test_exposure_dose_zero_is_unknown_not_zero() -> None:
    embl = read_mdoc(EMBL, SessionParameters(voltage_kv=300))
    frame = mdocfile.read(EMBL)
    assert set(frame["ExposureDose"]) == {0.0}  # the file says 0 ...
    assert {t.dose_e_per_angstrom2 for t in embl.tilts} == {None}  # ... which means "not calibrated"
    assert {t.dose_source for t in embl.tilts} == {"unknown"}
    assert not embl.dose_known()
    ebic = read_mdoc(EBIC)  # FrameDosesAndNumber = 0 7  0 3: frame doses unknown too
    assert not ebic.dose_known()


def test_dose_from_the_session_parameters_with_prior_doses_in_acquisition_order() -> None:
    per_tilt = read_mdoc(EBIC, SessionParameters(dose_per_tilt_e_per_angstrom2=3.5))
    assert {(t.dose_e_per_angstrom2, t.dose_source) for t in per_tilt.tilts} == {(3.5, "session-per-tilt")}
    assert [t.prior_dose_e_per_angstrom2 for t in per_tilt.tilts] == [3.5 * i for i in range(11)]
    per_frame = read_mdoc(EBIC, SessionParameters(dose_per_frame_e_per_angstrom2=0.25))
    assert {t.dose_e_per_angstrom2 for t in per_frame.tilts} == {0.25 * 10}  # NumSubFrames = 10
    known_frames = EBIC.read_text().replace(
        "FrameDosesAndNumber = 0 7  0 3", "FrameDosesAndNumber = 0.3 7  0.2 3"
    )
    frames = parse_mdoc(known_frames, "TS.mdoc")
    assert {t.dose_source for t in frames.tilts} == {"frame-doses"}
    assert [t.dose_e_per_angstrom2 for t in frames.tilts] == pytest.approx([0.3 * 7 + 0.2 * 3] * 11)


def test_datetime_is_microscope_local_time_and_comes_out_utc() -> None:
    berlin = read_mdoc(EBIC, SessionParameters(time_zone="Europe/Berlin"))  # CEST in August: UTC+2
    assert berlin.tilts[0].acquired_at == datetime(2022, 8, 1, 16, 58, 35, tzinfo=UTC)
    london = read_mdoc(EBIC, SessionParameters(time_zone="Europe/London"))  # BST: UTC+1
    assert london.tilts[0].acquired_at == datetime(2022, 8, 1, 17, 58, 35, tzinfo=UTC)
    winter = read_mdoc(EMBL, SessionParameters(voltage_kv=300, time_zone="Europe/Berlin"))  # November: UTC+1
    assert winter.tilts[0].acquired_at == datetime(2015, 11, 30, 14, 21, 38, tzinfo=UTC)
    with pytest.raises(ValueError, match="IANA"):
        SessionParameters(time_zone="Mars/Olympus")


def test_names_drop_the_stack_extension() -> None:
    assert series_name(EBIC) == "murfey_chrom_07_ts_010"
    assert series_name("TS_01.mrc.mdoc") == "TS_01"
    assert series_name("Position_3.mdoc") == "Position_3"
    assert series_name("TS_02.st.mdoc") == "TS_02"


def test_frame_set_and_montage_mdocs_are_refused_with_a_reason() -> None:
    with pytest.raises(NotATiltSeriesError, match="frame-set mdoc"):
        read_mdoc(DATA / "mdocfile_frame_set_single.mdoc")
    with pytest.raises(NotATiltSeriesError, match="montage mdoc"):
        read_mdoc(DATA / "mdocfile_montage_section.mdoc")


def test_missing_voltage_is_refused_not_300_and_overrides_apply() -> None:
    with pytest.raises(MissingSessionValueError, match="voltage_kv"):
        read_mdoc(EMBL)  # the real EMBL file has no Voltage line
    info = read_mdoc(EMBL, SessionParameters(voltage_kv=200, pixel_size_angstroms=5.35))
    assert info.voltage_kv == 200
    assert {t.pixel_size_angstroms for t in info.tilts} == {5.35}
    no_pixel = EBIC.read_text().replace("PixelSpacing = 1.94\n", "")
    with pytest.raises(MissingSessionValueError, match="pixel_size_angstroms"):
        parse_mdoc(no_pixel, "TS.mdoc")


def test_windows_and_unc_sub_frame_paths_give_the_file_name() -> None:
    ebic = read_mdoc(EBIC)
    assert ebic.tilts[0].sub_frame_name == "chrom_07_ts_010_167_000_-0.0.mrc"
    embl = read_mdoc(EMBL, SessionParameters(voltage_kv=300))
    assert embl.tilts[0].sub_frame_name == "TS_01_000_0.0.mrc"
    assert len(embl.tilts) == 41
    assert len(embl.distinct_angles()) == 41


def test_a_series_whose_mdoc_has_only_its_header_yet_waits() -> None:
    header = EBIC.read_text().split("[ZValue")[0]  # what the microscope has written when the series starts
    assert parse_mdoc(header, "Position_1.mdoc").tilts == ()
    assert parse_mdoc(EBIC.read_text(), "Position_1.mdoc").tilts  # and the whole file has its tilts
