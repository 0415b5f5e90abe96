"""The AreTomo backend: command lines from a request, ``.aln`` parsing, the subprocess path.

AreTomo cannot run here (no GPU, not on PyPI): the subprocess path is exercised with a stand-in
executable, a small Python script that writes what AreTomo2 writes (a volume and an ``.aln``).
"""

from __future__ import annotations

import dataclasses
import stat
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from reconstruct_fixtures import reconstruction_request, simulate_series

from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
from tiltstream.processors.reconstruct.alignment_files import parse_aln, write_aln
from tiltstream.processors.reconstruct.aretomo import AreTomoCommand, run_aretomo
from tiltstream.processors.runtime import (
    CorruptInputError,
    Job,
    PermanentError,
    ProgramUnavailableError,
    is_transient,
)

# written from AreTomo2's documented layout: header, dark frames, global rows, then local alignment
SAMPLE_ALN = """\
# AreTomo Alignment / Priism bprmMn
# RawSize = 4096 4096 5
# NumPatches = 2
# DarkFrame =     0     0   -60.00
# AlphaOffset =    -1.50
# BetaOffset =     0.00
# SEC     ROT         GMAG       TX          TY      SMEAN     SFIT    SCALE     BASE     TILT
    1    -4.6200    1.00000     12.500     -3.250     1.00     1.00     1.00     0.00   -30.00
    2    -4.6200    1.00000      0.000      0.000     1.00     1.00     1.00     0.00     0.00
    3    -4.6200    1.00000     -7.750      2.000     1.00     1.00     1.00     0.00    30.00
    4    -4.6200    1.00000    -20.000      9.500     1.00     1.00     1.00     0.00    60.00
# Local Alignment
    0    0    1.0    2.0    3.0    4.0    1.0
"""


def test_aln_is_parsed_into_our_conventions() -> None:
    aln = parse_aln(SAMPLE_ALN)
    assert aln.raw_size == (4096, 4096, 5)
    assert aln.dark_sections == (0,)
    assert aln.alpha_offset_degrees == pytest.approx(-1.5)
    assert aln.section.tolist() == [1, 2, 3, 4]  # local-alignment rows are not read as tilts
    np.testing.assert_allclose(aln.tilt_axis_angle_degrees, 85.38)  # ROT is from y, ours from x
    np.testing.assert_allclose(aln.shifts_xy_pixels[0], [-12.5, 3.25])  # the shift that aligns
    np.testing.assert_allclose(aln.tilt_angles_degrees, [-30, 0, 30, 60])


def test_aln_round_trips(tmp_path: Path) -> None:
    content = parse_aln(SAMPLE_ALN)
    write_aln(tmp_path / "a.aln", content)
    again = parse_aln((tmp_path / "a.aln").read_text())
    for field in ("section", "tilt_axis_angle_degrees", "shifts_xy_pixels", "tilt_angles_degrees"):
        np.testing.assert_allclose(getattr(again, field), getattr(content, field), atol=1e-3)
    assert again.dark_sections == content.dark_sections
    assert again.raw_size == content.raw_size


@pytest.mark.parametrize("text", ["", "# RawSize = 1 1 1\n", "    1  2  3\n", "  1 a 2 3 4 5 6 7 8 9\n"])
def test_broken_aln_is_corrupt_input(text: str) -> None:
    with pytest.raises(CorruptInputError):
        parse_aln(text)


def _command(tmp_path: Path, flavour: str = "aretomo2", executable: str = "AreTomo2") -> AreTomoCommand:
    return AreTomoCommand(
        executable=executable,
        flavour=flavour,  # type: ignore[arg-type]
        stack=tmp_path / "stack.mrc",
        tilt_file=tmp_path / "stack.tlt",
        output=tmp_path / "tomogram.mrc",
        pixel_size_angstroms=1.34,
        tilt_axis_angle_degrees=85.3,
        binning=4,
        thickness_angstroms=2680.0,
        voltage_kv=300.0,
        spherical_aberration_mm=2.7,
        amplitude_contrast=0.07,
    )


def _option(arguments: list[str], flag: str, count: int = 1) -> list[str]:
    index = arguments.index(flag)
    return arguments[index + 1 : index + 1 + count]


def test_aretomo2_command_is_built_from_the_request(tmp_path: Path) -> None:
    arguments = _command(tmp_path).arguments()
    assert arguments[0] == "AreTomo2"
    assert _option(arguments, "-InMrc") == [str(tmp_path / "stack.mrc")]
    assert _option(arguments, "-OutMrc") == [str(tmp_path / "tomogram.mrc")]
    assert _option(arguments, "-AngFile") == [str(tmp_path / "stack.tlt")]
    assert _option(arguments, "-TiltAxis", 2) == ["-4.70", "1"]  # from y, refined
    assert _option(arguments, "-VolZ") == ["2000"]  # unbinned pixels
    assert _option(arguments, "-OutBin") == ["4"]
    assert _option(arguments, "-PixSize") == ["1.3400"]
    assert _option(arguments, "-Kv") == ["300"]
    assert _option(arguments, "-OutImod") == ["1"]
    assert _option(arguments, "-DarkTol") == ["0.7"]
    assert _option(arguments, "-CorrCTF") == ["1"]
    assert "-Patch" not in arguments  # global alignment by default
    assert "-AtPatch" not in arguments


def test_aretomo3_command_starts_from_the_tilt_series(tmp_path: Path) -> None:
    command = _command(tmp_path, "aretomo3", "AreTomo3")
    arguments = command.arguments()
    assert _option(arguments, "-InPrefix") == [str(tmp_path / "stack")]
    assert _option(arguments, "-OutDir") == [str(tmp_path)]
    assert _option(arguments, "-Cmd") == ["1"]
    assert command.volume_path == tmp_path / "stack_Vol.mrc"
    assert command.aln_path == tmp_path / "stack.aln"
    assert _option(arguments, "-CorrCTF") == ["1"]
    assert _option(arguments, "-OutImod") == ["1"]
    local = dataclasses.replace(command, patches=4, dark_tolerance=0.5, correct_ctf=False)
    assert _option(local.arguments(), "-AtPatch", 2) == ["4", "4"]
    assert _option(local.arguments(), "-DarkTol") == ["0.5"]
    assert _option(local.arguments(), "-CorrCTF") == ["0"]
    assert _option(dataclasses.replace(local, flavour="aretomo2").arguments(), "-Patch", 2) == ["4", "4"]


def test_volz_follows_the_requested_thickness(tmp_path: Path) -> None:
    thin = dataclasses.replace(_command(tmp_path), thickness_angstroms=1340.0)
    assert _option(thin.arguments(), "-VolZ") == ["1000"]


# AreTomo2's documented options and how many values each takes (its usage text); anything else, or a
# flag with the wrong number of values, fails as the real program would refuse it.
STAND_IN = """\
import sys
from pathlib import Path
import mrcfile, numpy as np
OPTIONS = {"-InMrc": 1, "-OutMrc": 1, "-AngFile": 1, "-PixSize": 1, "-Kv": 1, "-Cs": 1,
    "-AmpContrast": 1, "-TiltAxis": 2, "-VolZ": 1, "-OutBin": 1, "-FlipVol": 1, "-OutImod": 1,
    "-DarkTol": 1, "-CorrCTF": 1, "-Gpu": 1, "-Patch": 2, "-AlignZ": 1, "-TiltCor": 1}
args = sys.argv[1:]
i = 0
while i < len(args):
    flag = args[i]
    if flag not in OPTIONS:
        sys.exit("unknown option " + flag)
    values = args[i + 1 : i + 1 + OPTIONS[flag]]
    if len(values) != OPTIONS[flag] or any(v.startswith("-") and not v[1:2].isdigit() for v in values):
        sys.exit(flag + " takes " + str(OPTIONS[flag]) + " values")
    i += 1 + OPTIONS[flag]
for required in ("-InMrc", "-OutMrc", "-AngFile", "-VolZ", "-OutImod", "-DarkTol", "-CorrCTF"):
    if required not in args:
        sys.exit("missing " + required)
value = lambda flag: args[args.index(flag) + 1]
stack = mrcfile.read(value("-InMrc"))
tilts = np.loadtxt(value("-AngFile"))
out = Path(value("-OutMrc"))
binning, depth = int(value("-OutBin")), int(value("-VolZ"))
with mrcfile.new(out, overwrite=True) as mrc:
    shape = (depth // binning, stack.shape[1] // binning, stack.shape[2] // binning)
    mrc.set_data(np.zeros(shape, np.float32))
rot = float(value("-TiltAxis"))
lines = ["# AreTomo Alignment / Priism bprmMn", f"# RawSize = {stack.shape[2]} {stack.shape[1]} {len(stack)}"]
lines += ["# NumPatches = 0", f"# DarkFrame = 0 0 {tilts[0]:.2f}", "# AlphaOffset = 0.00"]
lines += ["# BetaOffset = 0.00", "# SEC ROT GMAG TX TY SMEAN SFIT SCALE BASE TILT"]
for i in range(1, len(stack)):
    lines.append(f"{i} {rot:.2f} 1.0 {2.0 * i:.2f} {-1.0 * i:.2f} 1 1 1 0 {tilts[i]:.2f}")
out.with_suffix(".aln").write_text("\\n".join(lines) + "\\n")
"""


def _stand_in(tmp_path: Path, body: str = STAND_IN) -> Path:
    script = tmp_path / "bin" / "AreTomo2"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_processor_runs_aretomo_and_reports_its_alignment(tmp_path: Path) -> None:
    series = simulate_series(seed=4, size_pixels=64, tilt_count=7, noise=0.0)
    request = reconstruction_request(series, tmp_path, binning=2, thickness_angstroms=200.0)
    settings = ReconstructionSettings(
        data_roots={"processed": tmp_path / "processed"},
        backend="aretomo2",
        aretomo_executable=str(_stand_in(tmp_path)),
        device="cpu",
    )
    processor = ReconstructionProcessor(settings)
    job = Job(value=request, topic="t", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(request))
    event = output.value
    assert event["backend"] == "aretomo2"
    assert (event["size_z_pixels"], event["size_y_pixels"], event["size_x_pixels"]) == (20, 32, 32)
    rows = event["tilt_alignments"]
    assert [r["included"] for r in rows] == [False] + [True] * 6  # AreTomo dropped section 0 as dark
    assert rows[3]["shift_x_angstroms"] == pytest.approx(-6.0 * series.pixel_size_angstroms)  # -TX
    assert rows[3]["shift_y_angstroms"] == pytest.approx(3.0 * series.pixel_size_angstroms)  # -TY
    assert event["tilt_axis_angle_degrees"] == pytest.approx(85.0)
    with mrcfile.open(tmp_path / "processed" / event["aligned_stack"]["path"]) as mrc:
        assert mrc.data.shape == (6, 32, 32)


def test_aretomo_failures_are_permanent(tmp_path: Path) -> None:
    with pytest.raises(ProgramUnavailableError, match="not found") as raised:
        run_aretomo(_command(tmp_path, executable=str(tmp_path / "no-such-aretomo")), 10)
    assert not is_transient(raised.value)
    not_executable = tmp_path / "AreTomo2-copy"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(ProgramUnavailableError, match="not executable"):
        run_aretomo(_command(tmp_path, executable=str(not_executable)), 10)
    failing = _stand_in(tmp_path, "import sys\nprint('CUDA error: no device')\nsys.exit(3)\n")
    with pytest.raises(PermanentError, match="exited 3: CUDA error"):
        run_aretomo(_command(tmp_path, executable=str(failing)), 10)
