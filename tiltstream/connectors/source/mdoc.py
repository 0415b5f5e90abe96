"""Reading SerialEM ``.mdoc`` files with the ``mdocfile`` library into what the events need."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PureWindowsPath

import mdocfile.data_models

from tiltstream.connectors.source.errors import MdocParseError

__all__ = ["MdocInfo", "MdocTilt", "parse_mdoc", "read_mdoc", "serialem_time"]

_TILT_AXIS = re.compile(r"Tilt\s*axis\s*angle\s*=\s*([-+0-9.eE]+)")


@dataclass(frozen=True)
class MdocTilt:
    """One ``[ZValue]`` section: a tilt and the movie SerialEM saved for it."""

    z_value: int
    tilt_angle_degrees: float
    sub_frame_name: str
    acquired_at: datetime
    dose_e_per_angstrom2: float
    prior_dose_e_per_angstrom2: float
    pixel_size_angstroms: float | None
    exposure_time_seconds: float | None
    num_sub_frames: int | None
    target_defocus_micrometres: float | None
    image_shift_micrometres: tuple[float, float] | None
    rotation_angle_degrees: float | None


@dataclass(frozen=True)
class MdocInfo:
    """A tilt series' mdoc: global values and its sections in ZValue order."""

    tilts: tuple[MdocTilt, ...]
    tilt_axis_angle_degrees: float | None
    pixel_size_angstroms: float | None
    voltage_kv: float | None

    def distinct_angles(self) -> set[float]:
        """Nominal tilt angles (to 1/100°): a retaken angle counts once."""
        return {round(t.tilt_angle_degrees, 2) for t in self.tilts}


def serialem_time(text: str) -> datetime:
    """Parse SerialEM's ``DateTime`` (``25-Nov-26  09:00:06`` or with a 4-digit year), as UTC."""
    cleaned = " ".join(text.split())
    for pattern in ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S"):
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise MdocParseError(f"DateTime {text!r} is not SerialEM's format")


def parse_mdoc(text: str, name: str = "mdoc") -> MdocInfo:
    """Parse mdoc text; raise :class:`MdocParseError` for anything unusable.

    Parameters
    ----------
    text
        The file's content.
    name
        For messages.
    """
    try:
        mdoc = mdocfile.data_models.Mdoc.from_string(text)
    except Exception as exc:  # mdocfile raises ValueError, pydantic errors and others
        raise MdocParseError(f"{name}: mdocfile cannot parse it ({type(exc).__name__}: {exc})") from exc
    axis = None
    for title in mdoc.titles:
        match = _TILT_AXIS.search(title)
        if match:
            axis = float(match.group(1))
    glob = mdoc.global_data
    tilts = []
    for i, section in enumerate(mdoc.section_data):
        where = f"{name} section {i} (ZValue {section.ZValue})"
        if section.ZValue is None:
            continue  # montage or frame-set sections are not tilts
        missing = [k for k in ("TiltAngle", "SubFramePath", "DateTime") if getattr(section, k) is None]
        if missing:
            raise MdocParseError(f"{where}: no {', '.join(missing)}")
        frame_name = PureWindowsPath(str(section.SubFramePath)).name
        if not frame_name:
            raise MdocParseError(f"{where}: empty SubFramePath")
        assert section.TiltAngle is not None
        assert section.DateTime is not None
        shift = section.ImageShift
        tilts.append(
            MdocTilt(
                z_value=int(section.ZValue),
                tilt_angle_degrees=float(section.TiltAngle),
                sub_frame_name=frame_name,
                acquired_at=serialem_time(section.DateTime),
                dose_e_per_angstrom2=float(section.ExposureDose or 0.0),
                prior_dose_e_per_angstrom2=float(section.PriorRecordDose or 0.0),
                pixel_size_angstroms=section.PixelSpacing or glob.PixelSpacing,
                exposure_time_seconds=section.ExposureTime,
                num_sub_frames=section.NumSubFrames,
                target_defocus_micrometres=section.TargetDefocus,
                image_shift_micrometres=(float(shift[0]), float(shift[1])) if shift else None,
                rotation_angle_degrees=section.RotationAngle,
            )
        )
    tilts.sort(key=lambda t: t.z_value)
    if axis is None and tilts and tilts[0].rotation_angle_degrees is not None:
        axis = tilts[0].rotation_angle_degrees
    voltage = glob.Voltage if glob.Voltage is not None else None
    return MdocInfo(tuple(tilts), axis, glob.PixelSpacing, voltage)


def read_mdoc(path: Path) -> MdocInfo:
    """Read and parse the ``.mdoc`` at ``path``."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise MdocParseError(f"{path.name}: not text ({exc})") from exc
    return parse_mdoc(text, path.name)
