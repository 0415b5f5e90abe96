"""The MotionCor2/3 backend: its command line and the parsing of its documented output forms.

MotionCor2 cannot run here (no GPU, no licence), so the samples below are written in its output
formats: the per-frame lines of its standard output and the ``-Full.log`` table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tiltstream.processors.motioncorr.motioncor import (
    MotionCorCommand,
    fm_int_file_text,
    parse_motioncor_shifts,
    run_motioncor,
)
from tiltstream.processors.motioncorr.result import MotionParameters
from tiltstream.processors.runtime import (
    CorruptInputError,
    ProgramUnavailableError,
    is_transient,
)

STDOUT_SAMPLE = """\
MotionCor2 version 1.6.4
Full-frame alignment shift
...... Frame (  1) shift:     0.00      0.00
...... Frame (  2) shift:    -1.38      0.48
...... Frame (  3) shift:    -2.10      1.02
...... Frame (  4) shift:    -2.51      1.65
Computational time: 2.5 sec
"""

FULL_LOG_SAMPLE = """\
# full-frame alignment
# pixel size: 0.834
# frame  shift_x  shift_y
    1      0.00      0.00
    2     -1.38      0.48
    3     -2.10      1.02
    4     -2.51      1.65
"""

PARAMETERS = MotionParameters(
    pixel_size_angstroms=0.834,
    dose_per_frame_e_per_angstrom2=0.3,
    prior_dose_e_per_angstrom2=9.0,
    voltage_kv=300.0,
    patches_x=5,
    patches_y=5,
    binning=2,
)


def _command(tmp_path: Path, **overrides: object) -> MotionCorCommand:
    fields: dict[str, object] = {
        "executable": "MotionCor2",
        "movie": tmp_path / "raw" / "Position_1_003.tiff",
        "movie_format": "tiff",
        "output": tmp_path / "out" / "Position_1_003.mrc",
        "log_dir": tmp_path / "out" / "logs",
        "parameters": PARAMETERS,
        "gain": tmp_path / "raw" / "gain.mrc",
    }
    return MotionCorCommand(**(fields | overrides))  # type: ignore[arg-type]


def test_command_line_carries_every_input(tmp_path: Path) -> None:
    argv = _command(tmp_path).argv()
    options = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("-")}
    assert argv[0] == "MotionCor2"
    assert options["-InTiff"] == str(tmp_path / "raw" / "Position_1_003.tiff")
    assert options["-OutMrc"] == str(tmp_path / "out" / "Position_1_003.mrc")
    assert argv[argv.index("-Patch") + 1 : argv.index("-Patch") + 3] == ["5", "5"]
    assert options["-PixSize"] == "0.834"
    assert options["-kV"] == "300"
    assert options["-FtBin"] == "2"
    assert options["-FmDose"] == "0.3"
    assert options["-InitDose"] == "9"
    assert options["-Gain"] == str(tmp_path / "raw" / "gain.mrc")
    assert options["-Gpu"] == "0"
    mrc = _command(tmp_path, movie_format="mrc", gain=None).argv()
    assert "-InMrc" in mrc
    assert "-Gain" not in mrc


def test_unknown_dose_turns_dose_weighting_off(tmp_path: Path) -> None:
    """The source sends dose 0 with dose_source 'unknown' (ExposureDose 0 in the mdoc): no -FmDose, which
    MotionCor2 documents as "no dose weighting"."""
    unknown = dataclasses.replace(PARAMETERS, dose_per_frame_e_per_angstrom2=0.0)
    argv = _command(tmp_path, parameters=unknown).argv()
    assert "-FmDose" not in argv
    assert "-InitDose" not in argv
    assert "-FmDose" in _command(tmp_path).argv()


@pytest.mark.parametrize("text", [STDOUT_SAMPLE, FULL_LOG_SAMPLE])
def test_shifts_parsed_from_either_output_form(text: str) -> None:
    shifts = parse_motioncor_shifts(text)
    expected = np.array([[0.0, 0.0], [-1.38, 0.48], [-2.10, 1.02], [-2.51, 1.65]])
    np.testing.assert_allclose(shifts, expected)


def test_output_without_shifts_is_corrupt_and_a_missing_program_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(CorruptInputError):
        parse_motioncor_shifts("MotionCor2 version 1.6.4\nError: cannot open file\n")
    with pytest.raises(ProgramUnavailableError, match="not found") as raised:
        run_motioncor(_command(tmp_path, executable=str(tmp_path / "no-such-MotionCor2")), 10)
    assert not is_transient(raised.value)


def test_gain_rotation_flip_defects_and_eer_options(tmp_path: Path) -> None:
    eer = _command(
        tmp_path,
        movie=tmp_path / "raw" / "Position_1_003_EER.eer",
        movie_format="eer",
        gain_rotation_quarter_turns=1,
        gain_flip=2,
        defect_file=tmp_path / "raw" / "defects.txt",
        eer_sampling=2,
        fm_int_file=tmp_path / "out" / "fmint.txt",
    ).argv()
    options = {eer[i]: eer[i + 1] for i in range(1, len(eer) - 1) if eer[i].startswith("-")}
    assert options["-InEer"] == str(tmp_path / "raw" / "Position_1_003_EER.eer")
    assert (options["-RotGain"], options["-FlipGain"]) == ("1", "2")
    assert options["-DefectFile"] == str(tmp_path / "raw" / "defects.txt")
    assert (options["-EerSampling"], options["-FmIntFile"]) == ("2", str(tmp_path / "out" / "fmint.txt"))
    tiff = _command(tmp_path).argv()
    assert "-EerSampling" not in tiff
    assert tiff[tiff.index("-RotGain") + 1] == "0"
    with pytest.raises(ValueError, match="RotGain"):
        _command(tmp_path, gain_rotation_quarter_turns=4).argv()
    with pytest.raises(ValueError, match="EerSampling"):
        _command(tmp_path, movie_format="eer", eer_sampling=3).argv()
    assert fm_int_file_text(1200, 40, 0.025) == "1200 40 0.025\n"
    with pytest.raises(ValueError, match="impossible"):
        fm_int_file_text(100, 200, 0.025)
