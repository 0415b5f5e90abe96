"""The CTFFIND4/5 backend: the answers to its prompts and the parsing of its documented result file.

CTFFIND cannot run here; the samples follow the layout of its ``.txt`` output (comment lines, then
one row per micrograph: number, defocus 1, defocus 2, azimuth, phase shift, cross-correlation,
fit resolution, and for CTFFIND5 a thickness).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tiltstream.processors.ctf.ctffind import (
    CtffindCommand,
    detect_ctffind_version,
    parse_ctffind_output,
    run_ctffind,
)
from tiltstream.processors.ctf.result import CtfParameters
from tiltstream.processors.runtime import (
    CorruptInputError,
    ProgramUnavailableError,
    TransientError,
    is_transient,
)

CTFFIND4_SAMPLE = """\
# Output from CTFFind version 4.1.14, run on 2026-11-25 10:12:03
# Input file: /data/processed/cm40000-1/motioncorr/Position_1_003.mrc ; Number of micrographs: 1
# Pixel size: 1.340 Angstroms ; acceleration voltage: 300.0 keV ; spherical aberration: 2.70 mm ; \
amplitude contrast: 0.07
# Box size: 512 pixels ; min. res.: 30.0 Angstroms ; max. res.: 5.0 Angstroms ; min. def.: 5000.0 um; \
max. def. 80000.0 um
# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2; #4 - azimuth of \
astigmatism; #5 - additional phase shift [radians]; #6 - cross correlation; #7 - spacing (in Angstroms) \
up to which CTF rings were fit successfully
1.000000 40251.714844 39748.371094 32.512001 0.000000 0.123456 6.543210
"""

CTFFIND5_SAMPLE = """\
# Output from CTFFind version 5.0.2
# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2; #4 - azimuth; \
#5 - additional phase shift [radians]; #6 - cross correlation; #7 - spacing; #8 - estimated sample \
thickness (in Angstroms)
1.000000 29500.0 30500.0 -20.0 0.000000 0.2 7.1 1850.0
"""

PARAMETERS = CtfParameters(1.34, 300.0, 2.7, 0.07, 512, 30.0, 5.0, 5000.0, 80000.0, 500.0)


def test_answers_follow_ctffind_prompt_order(tmp_path: Path) -> None:
    command = CtffindCommand("ctffind", tmp_path / "m.mrc", tmp_path / "out" / "m.ctffind.mrc", PARAMETERS)
    lines = command.answers().splitlines()
    assert lines[:12] == [
        str(tmp_path / "m.mrc"),
        str(tmp_path / "out" / "m.ctffind.mrc"),
        "1.34",
        "300",
        "2.7",
        "0.07",
        "512",
        "30",
        "5",
        "5000",
        "80000",
        "500",
    ]
    assert lines[12:] == ["no"] * 5
    assert command.output_text == tmp_path / "out" / "m.ctffind.txt"


def test_ctffind4_result_parsed() -> None:
    result = parse_ctffind_output(CTFFIND4_SAMPLE, 512)
    assert result.defocus_u_angstroms == pytest.approx(40251.714844)
    assert result.defocus_v_angstroms == pytest.approx(39748.371094)
    assert result.astigmatism_angle_degrees == pytest.approx(32.512001)
    assert result.fit_score == pytest.approx(0.123456)
    assert result.fit_resolution_angstroms == pytest.approx(6.54321)
    assert result.phase_shift_degrees is None
    assert result.sample_thickness_angstroms is None
    assert result.backend == "CTFFIND 4.1.14"


def test_ctffind5_result_with_thickness_and_swapped_axes() -> None:
    result = parse_ctffind_output(CTFFIND5_SAMPLE, 512)
    assert (result.defocus_u_angstroms, result.defocus_v_angstroms) == (30500.0, 29500.0)
    assert result.astigmatism_angle_degrees == pytest.approx(70.0)  # major axis turned by 90°
    assert result.sample_thickness_angstroms == pytest.approx(1850.0)


def test_no_result_row_is_corrupt_and_missing_program_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(CorruptInputError):
        parse_ctffind_output("# Output from CTFFind version 4.1.14\n", 512)
    command = CtffindCommand(str(tmp_path / "no-ctffind"), tmp_path / "m.mrc", tmp_path / "o.mrc", PARAMETERS)
    with pytest.raises(ProgramUnavailableError) as raised:
        run_ctffind(command, 10)
    assert not is_transient(raised.value)
    not_executable = tmp_path / "ctffind"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(ProgramUnavailableError, match="not executable"):
        run_ctffind(
            CtffindCommand(str(not_executable), tmp_path / "m.mrc", tmp_path / "o.mrc", PARAMETERS), 10
        )
    with pytest.raises(ProgramUnavailableError):
        detect_ctffind_version(str(tmp_path / "no-ctffind"))


# A stand-in for CTFFIND that asks its documented questions in its version's order: each answer is
# checked against the kind the question wants (a path, a number, yes/no), so answers out of step
# fail as they would with the real program; it writes the documented .txt result.
STAND_IN = """#!{python}
import sys
VERSION = "{version}"
if sys.argv[1:] == ["--version"]:
    print(VERSION)
    sys.exit(0)
QUESTIONS = [("Input image file name", "path"), ("Output diagnostic image file name", "path"),
    ("Pixel size", "number"), ("Acceleration voltage", "number"), ("Spherical aberration", "number"),
    ("Amplitude contrast", "number"), ("Size of amplitude spectrum to compute", "number"),
    ("Minimum resolution", "number"), ("Maximum resolution", "number"), ("Minimum defocus", "number"),
    ("Maximum defocus", "number"), ("Defocus search step", "number"),
    ("Do you know what astigmatism is present?", "yesno"), ("Slower, more exhaustive search?", "yesno"),
    ("Use a restraint on astigmatism?", "yesno"), ("Find additional phase shift?", "yesno")]
THICKNESS = [("Use brute force 1D search?", "yesno"), ("Use 2D refinement?", "yesno"),
    ("Low resolution limit for nodes", "number"), ("High resolution limit for nodes", "number"),
    ("Use rounded square for nodes?", "yesno"), ("Downweight nodes?", "yesno")]
answers = sys.stdin.read().splitlines()
asked = []
def ask(question, kind):
    if not answers:
        sys.exit("end of input at: " + question)
    answer = answers.pop(0).strip()
    ok = {{"path": answer.endswith(".mrc"), "yesno": answer in ("yes", "no"),
          "number": answer.replace(".", "", 1).replace("-", "", 1).isdigit()}}[kind]
    if not ok:
        sys.exit(question + " got " + repr(answer))
    asked.append(answer)
    return answer
for question, kind in QUESTIONS:
    ask(question, kind)
thickness = "no"
if VERSION.startswith("5"):
    ask("Determine sample tilt?", "yesno")
    thickness = ask("Determine samnple thickness?", "yesno")
    if thickness == "yes":
        for question, kind in THICKNESS:
            ask(question, kind)
ask("Do you want to set expert options?", "yesno")
if answers:
    sys.exit("unanswered input left: " + repr(answers))
txt = asked[1].rsplit(".", 1)[0] + ".txt"
row = "1.000000 31000.0 30600.0 12.5 0.000000 0.21 6.8"
if thickness == "yes":
    row += " 1720.0"
with open(txt, "w") as out:
    out.write("# Output from CTFFind version " + VERSION + "\\n# Columns: ...\\n" + row + "\\n")
open(asked[1], "wb").close()
"""


def _stand_in(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"ctffind-{version}"
    path.write_text(STAND_IN.format(python=sys.executable, version=version))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("version", "major", "thickness"), [("4.1.14", 4, False), ("5.0.2", 5, False), ("5.0.2", 5, True)]
)
def test_each_version_gets_its_own_prompt_sequence(
    tmp_path: Path, version: str, major: int, thickness: bool
) -> None:
    program = _stand_in(tmp_path, version)
    assert detect_ctffind_version(str(program)) == major
    command = CtffindCommand(
        str(program),
        tmp_path / "m.mrc",
        tmp_path / "out" / "m.ctffind.mrc",
        PARAMETERS,
        major_version=major,
        determine_thickness=thickness,
    )
    result = run_ctffind(command, 30)
    assert result.defocus_u_angstroms == pytest.approx(31000.0)
    assert result.backend == f"CTFFIND {version}"
    assert result.sample_thickness_angstroms == (pytest.approx(1720.0) if thickness else None)


def test_ctffind4_answers_put_to_ctffind5_are_refused(tmp_path: Path) -> None:
    program = _stand_in(tmp_path, "5.0.2")
    command = CtffindCommand(str(program), tmp_path / "m.mrc", tmp_path / "o.ctffind.mrc", PARAMETERS)
    with pytest.raises(TransientError, match="exited with 1"):
        run_ctffind(command, 30)  # the answer to "expert options?" arrives where tilt was asked; input ends
