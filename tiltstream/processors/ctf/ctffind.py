"""The external backend: CTFFIND4/5, driven through its interactive prompts, its output file parsed.

CTFFIND asks its questions on standard input in a fixed order (input image, diagnostic output,
pixel size, voltage, Cs, amplitude contrast, box size, min and max resolution, min and max defocus,
defocus step, then yes/no questions: astigmatism known, exhaustive search, astigmatism restraint,
phase shift). CTFFIND5 then asks two more (determine sample tilt? determine sample thickness?) and,
when thickness is wanted, six more (1D brute-force search, 2D refinement, low and high resolution
limits for the nodes, rounded square, downweight nodes) before both ask about expert options; the
answers follow the version (``--version``, or set). It writes ``<output>.txt``: ``#`` comment
lines, then one row per micrograph — micrograph number, defocus 1 and 2 (Å), astigmatism azimuth
(°), additional phase shift (rad), cross-correlation, and the resolution (Å) to which Thon rings
were fitted; CTFFIND5 may add an estimated sample thickness (Å) as an eighth column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from tiltstream.processors.ctf.result import CtfParameters, CtfResult
from tiltstream.processors.runtime.errors import CorruptInputError, PermanentError, TransientError
from tiltstream.processors.runtime.programs import run_program

__all__ = ["CtffindCommand", "detect_ctffind_version", "parse_ctffind_output", "run_ctffind"]

#: CTFFIND5's resolution limits for the thickness nodes (Å), as eBIC answers them.
NODE_LOW_RESOLUTION_ANGSTROMS = 30.0
NODE_HIGH_RESOLUTION_ANGSTROMS = 3.0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@dataclass(frozen=True)
class CtffindCommand:
    """One CTFFIND run: the executable and the answers to its prompts."""

    executable: str
    micrograph: Path
    diagnostic: Path  # CTFFIND writes the fitted spectrum here (MRC) and the numbers to .txt beside it
    parameters: CtfParameters
    major_version: int = 4  # 4 or 5: which prompt sequence
    determine_tilt: bool = False  # CTFFIND5 only
    determine_thickness: bool = False  # CTFFIND5 only

    def _ctffind5_answers(self) -> list[str]:
        lines = [_yes(self.determine_tilt), _yes(self.determine_thickness)]
        if self.determine_thickness:
            lines += [
                "yes",  # brute-force 1D search?
                "yes",  # 2D refinement?
                f"{NODE_LOW_RESOLUTION_ANGSTROMS:g}",
                f"{NODE_HIGH_RESOLUTION_ANGSTROMS:g}",
                "no",  # use rounded square for nodes?
                "no",  # downweight nodes?
            ]
        return lines

    def answers(self) -> str:
        """The standard input that answers this CTFFIND version's prompts, one line each."""
        p = self.parameters
        lines = [
            str(self.micrograph),
            str(self.diagnostic),
            f"{p.pixel_size_angstroms:g}",
            f"{p.voltage_kv:g}",
            f"{p.spherical_aberration_mm:g}",
            f"{p.amplitude_contrast:g}",
            str(p.box_size_pixels),
            f"{p.min_resolution_angstroms:g}",
            f"{p.max_resolution_angstroms:g}",
            f"{p.min_defocus_angstroms:g}",
            f"{p.max_defocus_angstroms:g}",
            f"{p.defocus_step_angstroms:g}",
            "no",  # do you know what astigmatism is present?
            "no",  # slower, more exhaustive search?
            "no",  # use a restraint on astigmatism?
            "no",  # find additional phase shift?
        ]
        if self.major_version >= 5:
            lines += self._ctffind5_answers()
        lines.append("no")  # set expert options?
        return "\n".join(lines) + "\n"

    @property
    def output_text(self) -> Path:
        """Where CTFFIND writes the fitted numbers."""
        return self.diagnostic.with_suffix(".txt")


def parse_ctffind_output(text: str, box_size_pixels: int) -> CtfResult:
    """Read CTFFIND's ``.txt`` result (the first data row).

    Raises
    ------
    CorruptInputError
        No data row: CTFFIND could not fit this micrograph.
    """
    version = re.search(r"CTFFIND version ([0-9][0-9.a-z]*)", text, re.IGNORECASE)
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        values = [float(v) for v in line.split()]
        if len(values) < 7:
            raise CorruptInputError(f"CTFFIND result row has {len(values)} columns: {line!r}")
        defocus_1, defocus_2, azimuth = values[1], values[2], values[3]
        if defocus_2 > defocus_1:  # keep u the larger defocus; the major axis turns by 90 degrees
            defocus_1, defocus_2, azimuth = defocus_2, defocus_1, azimuth + 90.0
        azimuth = (azimuth + 90.0) % 180.0 - 90.0
        thickness = values[7] if len(values) > 7 and values[7] > 0 else None
        return CtfResult(
            defocus_u_angstroms=defocus_1,
            defocus_v_angstroms=defocus_2,
            astigmatism_angle_degrees=azimuth,
            fit_resolution_angstroms=values[6],
            fit_score=max(0.0, min(1.0, values[5])),
            backend=f"CTFFIND {version[1] if version else 'unknown'}",
            box_size_pixels=box_size_pixels,
            phase_shift_degrees=math.degrees(values[4]) if values[4] else None,
            sample_thickness_angstroms=thickness,
        )
    raise CorruptInputError("CTFFIND output holds no result row")


def detect_ctffind_version(executable: str, timeout_seconds: float = 30.0) -> int:
    """CTFFIND's major version from ``<executable> --version`` (e.g. ``5.0.2`` -> 5).

    Raises
    ------
    ProgramUnavailableError
        The program is missing or not executable.
    PermanentError
        Its answer names no version 4 or 5: set ``TILTSTREAM_CTF_CTFFIND_VERSION``.
    """
    done = run_program([executable, "--version"], timeout_seconds)
    found = re.search(r"\b([45])\.\d+(?:\.\d+)?", done.stdout + done.stderr)
    if found is None:
        raise PermanentError(
            f"{executable} --version names no CTFFIND 4 or 5 ({(done.stdout + done.stderr)[-200:]!r}); "
            "set TILTSTREAM_CTF_CTFFIND_VERSION"
        )
    return int(found[1])


def run_ctffind(command: CtffindCommand, timeout_seconds: float) -> CtfResult:
    """Run CTFFIND with its answers on standard input and parse its result file.

    A missing or non-executable program is permanent (:class:`ProgramUnavailableError`); a crash or
    a run past the time limit is transient; an output without a result is permanent.
    """
    command.diagnostic.parent.mkdir(parents=True, exist_ok=True)
    done = run_program([command.executable], timeout_seconds, input_text=command.answers())
    if done.returncode != 0 or not command.output_text.exists():
        raise TransientError(f"CTFFIND exited with {done.returncode}: {done.stderr[-500:]}")
    return parse_ctffind_output(command.output_text.read_text(), command.parameters.box_size_pixels)
