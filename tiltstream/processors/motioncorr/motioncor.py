"""The external backend: MotionCor2 / MotionCor3 run as a command, its shifts parsed from its output.

MotionCor2 prints one line per frame after the full-frame alignment, e.g.
``...... Frame (  1) shift:    -1.38      0.48`` (x, y in pixels of the output), and, with
``-LogDir``, writes ``<output stem>-Full.log`` (or ``<stem>0-Full.log``): ``#`` comment lines, then
one ``frame  shift_x  shift_y`` row per frame. Both forms are parsed; shifts are those applied to
align each frame, relative to the reference frame. With ``-SplitSum 1`` it also writes the sums of the
even and the odd frames beside the output, ``<stem>_EVN.mrc`` and ``<stem>_ODD.mrc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiltstream.processors.motioncorr.result import MotionParameters, MotionResult
from tiltstream.processors.runtime.errors import CorruptInputError, TransientError
from tiltstream.processors.runtime.input_files import open_regular
from tiltstream.processors.runtime.programs import run_program
from tiltstream.processors.runtime.volume_io import read_mrc

__all__ = ["MotionCorCommand", "fm_int_file_text", "parse_motioncor_shifts", "run_motioncor"]

_FRAME_LINE = re.compile(r"Frame\s*\(\s*(\d+)\)\s*shift:\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")


@dataclass(frozen=True)
class MotionCorCommand:
    """The arguments of one MotionCor2/3 run."""

    executable: str
    movie: Path
    movie_format: str
    output: Path
    log_dir: Path
    parameters: MotionParameters
    gain: Path | None = None
    gain_rotation_quarter_turns: int = 0  # -RotGain: 0 none, 1 90°, 2 180°, 3 270° (counter-clockwise)
    gain_flip: int = 0  # -FlipGain: 0 none, 1 about the horizontal axis (flip up-down), 2 about the vertical
    defect_file: Path | None = None  # -DefectFile: the camera's defect list
    eer_sampling: int = 1  # -EerSampling: 1 physical pixels, 2 super-resolution (4K -> 8K)
    fm_int_file: Path | None = None  # -FmIntFile: EER frames per rendered frame and the dose of each
    gpu: str = "0"
    iterations: int = 10
    tolerance_pixels: float = 0.5

    def argv(self) -> list[str]:
        """The command line (see MotionCor2's user manual for each option)."""
        p = self.parameters
        flag = {"mrc": "-InMrc", "tiff": "-InTiff", "tif": "-InTiff", "eer": "-InEer"}[self.movie_format]
        argv = [
            self.executable,
            flag, str(self.movie),
            "-OutMrc", str(self.output),
            "-Patch", str(p.patches_x), str(p.patches_y),
            "-Iter", str(self.iterations),
            "-Tol", f"{self.tolerance_pixels:g}",
            "-PixSize", f"{p.pixel_size_angstroms:g}",
            "-kV", f"{p.voltage_kv:g}",
            "-FtBin", str(p.binning),
            "-Gpu", self.gpu,
            "-LogDir", f"{self.log_dir}/",
        ]  # fmt: skip
        if p.dose_weighting and p.dose_per_frame_e_per_angstrom2 > 0:  # 0: the dose is unknown
            argv += [
                "-FmDose", f"{p.dose_per_frame_e_per_angstrom2:g}",
                "-InitDose", f"{p.prior_dose_e_per_angstrom2:g}",
            ]  # fmt: skip
        if p.frame_halves:
            argv += ["-SplitSum", "1"]
        return argv + self._gain_and_detector_options()

    def _gain_and_detector_options(self) -> list[str]:
        """Gain (with its rotation and flip), defects, and EER rendering (MotionCor2 1.4+ / MotionCor3)."""
        if self.gain_rotation_quarter_turns not in (0, 1, 2, 3) or self.gain_flip not in (0, 1, 2):
            raise ValueError(
                f"gain rotation {self.gain_rotation_quarter_turns} / flip {self.gain_flip}: "
                "MotionCor2 takes -RotGain 0-3 and -FlipGain 0-2"
            )
        argv: list[str] = []
        if self.gain is not None:
            argv += ["-Gain", str(self.gain)]
            argv += ["-RotGain", str(self.gain_rotation_quarter_turns), "-FlipGain", str(self.gain_flip)]
        if self.defect_file is not None:
            argv += ["-DefectFile", str(self.defect_file)]
        if self.movie_format == "eer":
            if self.eer_sampling not in (1, 2):
                raise ValueError(f"EER sampling {self.eer_sampling}: MotionCor2 takes -EerSampling 1 or 2")
            argv += ["-EerSampling", str(self.eer_sampling)]
            if self.fm_int_file is not None:
                argv += ["-FmIntFile", str(self.fm_int_file)]
        return argv


def fm_int_file_text(
    eer_frames: int, frames_per_group: int, dose_per_eer_frame_e_per_angstrom2: float
) -> str:
    """MotionCor2's ``-FmIntFile`` for EER: one line ``TOTAL_FRAMES GROUP DOSE`` (frames rendered per
    output frame, and the dose of one EER frame); MotionCor2 groups ``GROUP`` EER frames into each."""
    if eer_frames < 1 or not 1 <= frames_per_group <= eer_frames:
        raise ValueError(f"EER grouping {frames_per_group} of {eer_frames} frames is impossible")
    return f"{eer_frames} {frames_per_group} {dose_per_eer_frame_e_per_angstrom2:.6g}\n"


def parse_motioncor_shifts(text: str) -> np.ndarray:
    """Per-frame (x, y) shifts in pixels, ``(t, 2)``, from MotionCor2's stdout or its ``-Full.log``.

    Raises
    ------
    CorruptInputError
        No shift found: the run did not align the movie.
    """
    rows = [(int(m[1]), float(m[2]), float(m[3])) for m in _FRAME_LINE.finditer(text)]
    if not rows:
        for line in text.splitlines():
            fields = line.split()
            if not fields or line.lstrip().startswith("#"):
                continue
            try:
                rows.append((int(float(fields[0])), float(fields[1]), float(fields[2])))
            except (ValueError, IndexError):
                continue
    if not rows:
        raise CorruptInputError("MotionCor2 output holds no frame shifts")
    rows.sort()
    return np.array([[x, y] for _, x, y in rows], dtype=np.float64)


def run_motioncor(command: MotionCorCommand, timeout_seconds: float) -> MotionResult:
    """Run MotionCor2/3 and read back its micrograph(s) and shifts.

    A missing or non-executable program is permanent (``ProgramUnavailableError``); a crash or a run
    past the time limit is transient (retried: the GPU may be busy); output that cannot be parsed is
    permanent.
    """
    command.log_dir.mkdir(parents=True, exist_ok=True)
    done = run_program(command.argv(), timeout_seconds)
    if done.returncode != 0:
        raise TransientError(f"MotionCor2 exited with {done.returncode}: {done.stderr[-500:]}")
    full_logs = sorted(command.log_dir.glob(f"{command.output.stem}*-Full.log"))
    shifts = parse_motioncor_shifts(full_logs[0].read_text() if full_logs else done.stdout)
    pixel = command.parameters.pixel_size_angstroms * command.parameters.binning
    main = read_mrc(open_regular(command.output), permissive=True)
    summed, weighted = main, None
    not_weighted = command.output.with_name(f"{command.output.stem}_DW{command.output.suffix}")
    weighting = command.parameters.dose_weighting and command.parameters.dose_per_frame_e_per_angstrom2 > 0
    if weighting and not_weighted.exists():
        # MotionCor2 writes the plain sum to -OutMrc and the dose-weighted one beside it as _DW
        weighted = read_mrc(open_regular(not_weighted), permissive=True)
    even, odd = _frame_halves(command)
    version = re.search(r"MotionCor[23]?\s*(?:version\s*)?([0-9][0-9.]*)", done.stdout)
    return MotionResult(
        summed=summed,
        dose_weighted=weighted,
        shifts_angstroms=shifts * pixel,
        pixel_size_angstroms=pixel,
        patches_x=command.parameters.patches_x,
        patches_y=command.parameters.patches_y,
        backend=f"MotionCor2 {version[1] if version else 'unknown'}",
        even_sum=even,
        odd_sum=odd,
    )


def _frame_halves(command: MotionCorCommand) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``-SplitSum`` sums ``<stem>_EVN`` / ``<stem>_ODD`` beside the output, when asked for and both
    are there (a MotionCor2 without ``-SplitSum`` writes none: no halves then, the rest stands)."""
    if not command.parameters.frame_halves:
        return None, None
    output = command.output
    even, odd = (output.with_name(f"{output.stem}{tag}{output.suffix}") for tag in ("_EVN", "_ODD"))
    if not (even.exists() and odd.exists()):
        return None, None
    return read_mrc(open_regular(even), permissive=True), read_mrc(open_regular(odd), permissive=True)
