"""Reading SerialEM and Tomography 5 ``.mdoc`` files with the ``mdocfile`` library into what the events need.

Which field holds the tilt axis depends on the program that wrote the file, and the two disagree by
about 90°: SerialEM's tilt-series files carry it in the header line ``[T = Tilt axis angle = X ...]`` (their
per-section ``RotationAngle`` is something else), Tomography 5's (``[T = Tomography: ...]``) in each
section's ``RotationAngle`` (their header ``TiltAxisAngle`` is something else). The writer is detected and
its field read; there is no fallback across conventions: a missing axis comes from the session
parameters, or the mdoc is refused with :class:`~.errors.MissingSessionValueError`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path, PureWindowsPath
from typing import Any

import mdocfile.data_models

from tiltstream.connectors.source.errors import MdocParseError, MissingSessionValueError, NotATiltSeriesError
from tiltstream.connectors.source.parameters import SessionParameters

__all__ = [
    "MdocInfo",
    "MdocTilt",
    "mdoc_writer",
    "parse_mdoc",
    "read_mdoc",
    "serialem_time",
    "series_name",
]

# mdocfile warns for every field it maps or keeps (FrameDosesAndNumber, CtfFind, ...): normal in real files
logging.getLogger("mdocfile").setLevel(logging.ERROR)

_TILT_AXIS = re.compile(r"Tilt\s*axis\s*angle\s*=\s*([-+0-9.eE]+)")
_STACK_SUFFIXES = (".mrc", ".st", ".mrcs", ".tif", ".tiff", ".ali")


@dataclass(frozen=True)
class MdocTilt:
    """One ``[ZValue]`` section: a tilt and the movie saved for it.

    ``dose_e_per_angstrom2`` is ``None`` when unknown (``ExposureDose`` 0 or missing and nothing else tells);
    ``dose_source`` says where a known dose came from (``mdoc``, ``frame-doses``, ``session-per-tilt``,
    ``session-per-frame``) or is ``unknown``. ``acquired_at`` is true UTC.
    """

    z_value: int
    tilt_angle_degrees: float
    sub_frame_name: str
    acquired_at: datetime
    dose_e_per_angstrom2: float | None
    dose_source: str
    prior_dose_e_per_angstrom2: float
    pixel_size_angstroms: float | None
    exposure_time_seconds: float | None
    num_sub_frames: int | None
    target_defocus_micrometres: float | None
    image_shift_micrometres: tuple[float, float] | None
    rotation_angle_degrees: float | None
    binning: float | None = None
    gain_reference_name: str | None = None  # the section's GainReference, as SerialEM writes it


@dataclass(frozen=True)
class MdocInfo:
    """A tilt series' mdoc: global values and its sections in ZValue order.

    ``writer`` is ``serialem`` or ``tomo5``; ``tilt_axis_source`` is ``mdoc`` or ``session``;
    ``parameters_version`` the session parameters' version the values were made with.
    """

    tilts: tuple[MdocTilt, ...]
    tilt_axis_angle_degrees: float | None
    pixel_size_angstroms: float | None
    voltage_kv: float
    writer: str = "serialem"
    tilt_axis_source: str = "mdoc"
    parameters_version: int = 0

    def distinct_angles(self) -> set[float]:
        """Nominal tilt angles (to 1/100°): a retaken angle counts once."""
        return {round(t.tilt_angle_degrees, 2) for t in self.tilts}

    def dose_known(self) -> bool:
        """True when every tilt's dose is known."""
        return all(t.dose_e_per_angstrom2 is not None for t in self.tilts)


def series_name(mdoc_path: Path | str) -> str:
    """The series' name: the mdoc's name without ``.mdoc`` and the stack extension (``TS_01.mrc.mdoc``
    → ``TS_01``)."""
    name = Path(mdoc_path).name
    if name.lower().endswith(".mdoc"):
        name = name[: -len(".mdoc")]
    for suffix in _STACK_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def serialem_time(text: str, zone: tzinfo = UTC) -> datetime:
    """Parse an mdoc ``DateTime`` (``25-Nov-26  09:00:06``, 4-digit years too), local time in ``zone``,
    into UTC."""
    cleaned = " ".join(text.split())
    for pattern in ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S"):
        try:
            local = datetime.strptime(cleaned, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
        return local.astimezone(UTC)
    raise MdocParseError(f"DateTime {text!r} is not SerialEM's format")


def mdoc_writer(mdoc: mdocfile.data_models.Mdoc) -> str:
    """``tomo5`` for Thermo Fisher Tomography 5 (``[T = Tomography...]``), ``serialem`` for SerialEM, or
    ``unknown``."""
    extra = getattr(mdoc.global_data, "model_extra", None) or {}
    titles = [t.strip("[] ").removeprefix("T =").strip() for t in mdoc.titles]
    titles += [str(extra["T"])] if "T" in extra else []
    if any(t.startswith("Tomography") for t in titles):
        return "tomo5"
    version = str(mdoc.global_data.Version or "")
    if any(t.startswith("SerialEM") for t in titles) or version.startswith("SerialEM"):
        return "serialem"
    return "unknown"


def _refuse_non_tilt_series(mdoc: mdocfile.data_models.Mdoc, name: str) -> None:
    sections = mdoc.section_data
    frame_sets = sum(s.FrameSet is not None for s in sections)
    if frame_sets:
        raise NotATiltSeriesError(
            f"{name}: a frame-set mdoc ({frame_sets} [FrameSet] section(s): single exposures saved as "
            "frames, not a tilt series); nothing is announced for it"
        )
    montage = bool(mdoc.global_data.Montage) or any(
        s.PieceCoordinates is not None or s.MontSection is not None for s in sections
    )
    if montage:
        raise NotATiltSeriesError(
            f"{name}: a montage mdoc (Montage = 1 or PieceCoordinates in its sections: pieces of a map, "
            "not a tilt series); nothing is announced for it"
        )
    if not sections:
        return  # only the header yet: SerialEM writes it when the series starts, sections as tilts come
    tilts = [s for s in sections if s.ZValue is not None]
    if not tilts:
        raise NotATiltSeriesError(f"{name}: sections but no [ZValue] section: not a tilt series")
    if not any(s.SubFramePath for s in tilts):
        raise NotATiltSeriesError(
            f"{name}: no section names a movie (SubFramePath): an image stack's mdoc without frames saved, "
            "nothing to process"
        )


def _header_axis(mdoc: mdocfile.data_models.Mdoc) -> float | None:
    axis = None
    for title in mdoc.titles:
        match = _TILT_AXIS.search(title)
        if match:
            axis = float(match.group(1))
    return axis


def _tilt_axis(
    mdoc: mdocfile.data_models.Mdoc, writer: str, params: SessionParameters, name: str
) -> tuple[float, str]:
    """The tilt axis by the writer's own convention, or the session's override; never the other field."""
    if params.tilt_axis_angle_degrees is not None:
        return params.tilt_axis_angle_degrees, "session"
    if writer == "tomo5":
        first = next((s for s in mdoc.section_data if s.ZValue is not None), None)
        axis = first.RotationAngle if first is not None else None
        field = "RotationAngle (Tomography 5 writes the tilt axis there)"
    elif writer == "serialem":
        axis = _header_axis(mdoc)
        field = "the header line [T = Tilt axis angle = ...] (SerialEM's RotationAngle is not the tilt axis)"
    else:
        axis, field = None, "a known writer's field (neither SerialEM nor Tomography 5 wrote this file)"
    if axis is None:
        raise MissingSessionValueError(
            f"{name}: no tilt axis in {field}; set it with "
            "`tiltstream session set SESSION tilt_axis_angle_degrees=X` (the series waits)"
        )
    return float(axis), "mdoc"


def _dose(section: Any, params: SessionParameters) -> tuple[float | None, str]:
    """The tilt's dose, or ``(None, "unknown")``: ``ExposureDose`` 0 means not calibrated, not zero."""
    if section.ExposureDose:
        return float(section.ExposureDose), "mdoc"
    frame_doses = section.FrameDosesAndNumbers or []
    total = sum(float(dose) * int(count) for dose, count in frame_doses)
    if total > 0:
        return total, "frame-doses"
    if params.dose_per_tilt_e_per_angstrom2 is not None:
        return params.dose_per_tilt_e_per_angstrom2, "session-per-tilt"
    if params.dose_per_frame_e_per_angstrom2 is not None and section.NumSubFrames:
        return params.dose_per_frame_e_per_angstrom2 * int(section.NumSubFrames), "session-per-frame"
    return None, "unknown"


def _section_tilt(section: Any, glob: Any, params: SessionParameters, zone: tzinfo, where: str) -> MdocTilt:
    missing = [k for k in ("TiltAngle", "SubFramePath", "DateTime") if getattr(section, k) is None]
    if missing:
        raise MdocParseError(f"{where}: no {', '.join(missing)}")
    frame_name = PureWindowsPath(str(section.SubFramePath)).name
    if not frame_name:
        raise MdocParseError(f"{where}: empty SubFramePath")
    dose, source = _dose(section, params)
    shift = section.ImageShift
    return MdocTilt(
        z_value=int(section.ZValue),
        tilt_angle_degrees=float(section.TiltAngle),
        sub_frame_name=frame_name,
        acquired_at=serialem_time(section.DateTime, zone),
        dose_e_per_angstrom2=dose,
        dose_source=source,
        prior_dose_e_per_angstrom2=float(section.PriorRecordDose or 0.0),
        pixel_size_angstroms=params.pixel_size_angstroms or section.PixelSpacing or glob.PixelSpacing,
        exposure_time_seconds=section.ExposureTime,
        num_sub_frames=section.NumSubFrames,
        target_defocus_micrometres=section.TargetDefocus,
        image_shift_micrometres=(float(shift[0]), float(shift[1])) if shift else None,
        rotation_angle_degrees=section.RotationAngle,
        binning=section.Binning,
        gain_reference_name=(getattr(section, "model_extra", None) or {}).get("GainReference"),
    )


def _with_prior_doses(tilts: list[MdocTilt]) -> list[MdocTilt]:
    """Where the mdoc has no ``PriorRecordDose`` but every dose is known, the prior dose is the sum of the
    earlier tilts' (in acquisition order)."""
    if any(t.prior_dose_e_per_angstrom2 for t in tilts) or any(t.dose_e_per_angstrom2 is None for t in tilts):
        return tilts
    out, total = [], 0.0
    for tilt in tilts:
        out.append(tilt if total == 0 else _replace_prior(tilt, total))
        total += tilt.dose_e_per_angstrom2 or 0.0
    return out


def _replace_prior(tilt: MdocTilt, prior: float) -> MdocTilt:
    return replace(tilt, prior_dose_e_per_angstrom2=round(prior, 6))


def parse_mdoc(text: str, name: str = "mdoc", parameters: SessionParameters | None = None) -> MdocInfo:
    """Parse mdoc text; raise :class:`MdocParseError` (or a subclass) for anything unusable.

    Parameters
    ----------
    text
        The file's content.
    name
        For messages.
    parameters
        The session's parameters (overrides, dose, time zone); none set when omitted.
    """
    params = parameters or SessionParameters()
    try:
        mdoc = mdocfile.data_models.Mdoc.from_string(text)
    except Exception as exc:  # mdocfile raises ValueError, pydantic errors and others
        raise MdocParseError(f"{name}: mdocfile cannot parse it ({type(exc).__name__}: {exc})") from exc
    _refuse_non_tilt_series(mdoc, name)
    writer = mdoc_writer(mdoc)
    axis, axis_source = _tilt_axis(mdoc, writer, params, name)
    glob, zone = mdoc.global_data, params.zone()
    tilts = [
        _section_tilt(s, glob, params, zone, f"{name} section {i} (ZValue {s.ZValue})")
        for i, s in enumerate(mdoc.section_data)
        if s.ZValue is not None
    ]
    tilts = _with_prior_doses(sorted(tilts, key=lambda t: t.z_value))
    voltage = (
        params.voltage_kv or glob.Voltage or next((s.Voltage for s in mdoc.section_data if s.Voltage), None)
    )
    if voltage is None:
        raise MissingSessionValueError(
            f"{name}: no Voltage in the mdoc; set it with `tiltstream session set SESSION voltage_kv=300`"
        )
    pixel = params.pixel_size_angstroms or glob.PixelSpacing
    if any((t.pixel_size_angstroms or pixel) is None for t in tilts):
        raise MissingSessionValueError(
            f"{name}: no PixelSpacing; set it with `tiltstream session set SESSION pixel_size_angstroms=X`"
        )
    return MdocInfo(tuple(tilts), axis, pixel, float(voltage), writer, axis_source, params.version)


def read_mdoc(path: Path, parameters: SessionParameters | None = None) -> MdocInfo:
    """Read and parse the ``.mdoc`` at ``path`` (see :func:`parse_mdoc`)."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise MdocParseError(f"{path.name}: not text ({exc})") from exc
    return parse_mdoc(text, path.name, parameters)
