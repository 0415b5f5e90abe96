"""The external backend: AreTomo2 or AreTomo3 as a subprocess, its ``.aln`` read back.

The stack and the ``.tlt`` of the tilts used are written first (tilt order); AreTomo aligns,
reconstructs at ``-OutBin`` into ``-VolZ`` unbinned pixels and writes ``<stem>.aln`` beside its
output. AreTomo's ``-TiltAxis`` is measured from the y axis (our events: from x).

Options as AreTomo2/3 document them (and as eBIC's pipeline passes them): ``-VolZ`` the volume depth
in unbinned pixels from the request's (estimated) thickness, ``-OutImod 1`` IMOD files for RELION 4+,
``-DarkTol`` the fraction of the mean below which a tilt is dropped as dark, ``-CorrCTF 1`` local
CTF correction of the tomogram, and for local alignment ``-Patch Nx Ny`` (AreTomo2) or
``-AtPatch Nx Ny`` (AreTomo3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tiltstream.processors.reconstruct.alignment_files import AlnFile, parse_aln
from tiltstream.processors.runtime.errors import CorruptInputError, PermanentError
from tiltstream.processors.runtime.programs import run_program

__all__ = ["AreTomoCommand", "run_aretomo"]


@dataclass(frozen=True)
class AreTomoCommand:
    """Everything AreTomo's command line is built from."""

    executable: str
    flavour: Literal["aretomo2", "aretomo3"]
    stack: Path  # (t, h, w) MRC in tilt order
    tilt_file: Path  # .tlt, one angle per line
    output: Path  # tomogram MRC (AreTomo3 writes <stack stem>_Vol.mrc into its folder)
    pixel_size_angstroms: float
    tilt_axis_angle_degrees: float  # from x
    binning: int
    thickness_angstroms: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float
    gpu: str = "0"
    refine_tilt_axis: bool = True
    correct_ctf: bool = True  # -CorrCTF
    dark_tolerance: float = 0.7  # -DarkTol (AreTomo's default)
    patches: int = 0  # local alignment on patches x patches; 0: global alignment only

    @property
    def volume_z_pixels(self) -> int:
        """``-VolZ``: thickness in unbinned pixels (AreTomo's unit)."""
        return round(self.thickness_angstroms / self.pixel_size_angstroms)

    @property
    def volume_path(self) -> Path:
        """Where AreTomo writes the tomogram (AreTomo3 names it ``<stack stem>_Vol.mrc``)."""
        if self.flavour == "aretomo3":
            return self.output.parent / f"{self.stack.stem}_Vol.mrc"
        return self.output

    @property
    def aln_path(self) -> Path:
        """Where AreTomo writes the alignment (``<stem>.aln`` beside the tomogram)."""
        if self.flavour == "aretomo3":
            return self.output.parent / f"{self.stack.stem}.aln"
        return self.output.with_suffix(".aln")

    def arguments(self) -> list[str]:
        """The command line."""
        axis = f"{self.tilt_axis_angle_degrees - 90.0:.2f}"
        common = [
            "-PixSize", f"{self.pixel_size_angstroms:.4f}",
            "-Kv", f"{self.voltage_kv:g}",
            "-Cs", f"{self.spherical_aberration_mm:g}",
            "-AmpContrast", f"{self.amplitude_contrast:g}",
            "-TiltAxis", axis, "1" if self.refine_tilt_axis else "0",
            "-VolZ", str(self.volume_z_pixels),
            "-OutBin", str(self.binning),
            "-FlipVol", "1",
            "-OutImod", "1",
            "-DarkTol", f"{self.dark_tolerance:g}",
            "-CorrCTF", "1" if self.correct_ctf else "0",
            "-Gpu", self.gpu,
        ]  # fmt: skip
        if self.patches > 0:
            patch_flag = "-AtPatch" if self.flavour == "aretomo3" else "-Patch"
            common += [patch_flag, str(self.patches), str(self.patches)]
        if self.flavour == "aretomo3":
            return [
                self.executable,
                "-InPrefix", str(self.stack.with_suffix("")),
                "-InSuffix", ".mrc",
                "-OutDir", str(self.output.parent),
                "-AtBin", str(self.binning),
                "-Cmd", "1",  # start from the tilt series: no motion correction
                *common,
            ]  # fmt: skip
        return [
            self.executable,
            "-InMrc", str(self.stack),
            "-OutMrc", str(self.output),
            "-AngFile", str(self.tilt_file),
            *common,
        ]  # fmt: skip


def run_aretomo(command: AreTomoCommand, timeout_seconds: float) -> AlnFile:
    """Run AreTomo and read its ``.aln``.

    Raises
    ------
    ProgramUnavailableError
        The executable is missing or not executable (permanent).
    PermanentError
        AreTomo exits non-zero (its tail is in the message).
    TransientError
        AreTomo ran past ``timeout_seconds`` (a busy GPU may clear).
    CorruptInputError
        It exited 0 but wrote no tomogram or no readable ``.aln``.
    """
    completed = run_program(command.arguments(), timeout_seconds)
    if completed.returncode != 0:
        tail = (completed.stdout + completed.stderr)[-1500:]
        raise PermanentError(f"AreTomo exited {completed.returncode}: {tail}")
    if not command.volume_path.exists() or not command.aln_path.exists():
        raise CorruptInputError(f"AreTomo wrote no {command.volume_path.name} / {command.aln_path.name}")
    return parse_aln(command.aln_path.read_text())
