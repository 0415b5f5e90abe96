"""The ground truth of a simulated tilt series, written beside the session as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SeriesTruth", "TiltTruth", "load_ground_truth", "write_ground_truth"]


@dataclass
class TiltTruth:
    """What really happened at one tilt (one mdoc section, one movie).

    Defocus is in angstroms, positive for underfocus; shifts are (x, y). ``frame_shifts_pixels[i]`` is
    how far frame ``i``'s content moved from frame 0 (the correction is its negative).
    """

    z_value: int
    scheme_index: int
    movie: str
    nominal_tilt_angle_degrees: float
    true_tilt_angle_degrees: float
    defocus_u_angstroms: float
    defocus_v_angstroms: float
    astigmatism_angle_degrees: float
    dose_e_per_angstrom2: float
    prior_dose_e_per_angstrom2: float
    specimen_shift_angstroms: list[float]
    frame_shifts_pixels: list[list[float]]
    acquired_at: str
    dark: bool = False
    fault: str | None = None
    superseded_by_z_value: int | None = None
    doming: dict[str, Any] | None = None  # the local motion (doming.Doming as a dict), when simulated


@dataclass
class SeriesTruth:
    """The ground truth of one tilt series (one PACE position)."""

    session_id: str
    position_name: str
    mdoc: str
    phantom: str
    scheme: str
    scheme_angles_degrees: list[float]
    nominal_tilt_axis_angle_degrees: float
    true_tilt_axis_angle_degrees: float
    tilt_angle_offset_degrees: float
    pixel_size_angstroms: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float
    image_size_pixels: int
    frames: int
    movie_format: str
    image_shift_micrometres: list[float]
    mdoc_fields_shuffled: bool = False
    cancelled_after_tilts: int | None = None
    gain_reference: str | None = None  # relative to the session; None: flat detector
    gain_rotation_quarter_turns: int = 0  # what fits the stored reference to the frames (then the flip)
    gain_flip: int = 0
    finished: bool = False
    tilts: list[TiltTruth] = field(default_factory=list)

    def counted_tilts(self) -> list[TiltTruth]:
        """The tilts whose movie counts: not superseded by a retake, in acquisition order."""
        return [t for t in self.tilts if t.superseded_by_z_value is None]


def write_ground_truth(truth: SeriesTruth, path: Path) -> None:
    """Write ``truth`` as JSON atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(truth), indent=1))
    os.replace(tmp, path)


def load_ground_truth(path: Path) -> SeriesTruth:
    """Read a ground-truth file written by the simulator."""
    data: dict[str, Any] = json.loads(path.read_text())
    tilts = [TiltTruth(**t) for t in data.pop("tilts")]
    return SeriesTruth(**data, tilts=tilts)
