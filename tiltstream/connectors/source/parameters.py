"""Operator-set per-session values the mdoc lacks or gets wrong (``TILTSTREAM_SOURCE_PARAMETERS__*``)."""

from __future__ import annotations

import os
from datetime import UTC, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["DETECTOR_FIELDS", "SessionParameters", "microscope_zone", "parse_assignments"]

#: The parameters the motion corrector applies, unset meaning its service setting (not the mdoc's value).
DETECTOR_FIELDS = (
    "gain_rotation_quarter_turns",
    "gain_flip",
    "eer_group_frames",
    "eer_dose_per_output_frame_e_per_angstrom2",
    "eer_sampling",
    "defect_file",
)


class SessionParameters(BaseModel):
    """Values an operator sets for one session; ``None`` means "take it from the mdoc".

    ``tilt_axis_angle_degrees``, ``pixel_size_angstroms``, ``voltage_kv`` and
    ``spherical_aberration_mm`` override the mdoc when set. ``dose_per_tilt_e_per_angstrom2`` and
    ``dose_per_frame_e_per_angstrom2`` apply only where the mdoc's ``ExposureDose`` is 0 or missing (SerialEM
    writes 0 when the dose is not calibrated). ``time_zone`` is the microscope PC's IANA zone (its
    ``DateTime`` is local time); ``None`` is this host's zone. ``version`` is the parameters' version,
    recorded in the events made with them (0: nothing set). ``gain_reference`` is a file relative to the
    session directory (else the mdoc's ``GainReference`` or SerialEM's ``CountRef_*`` beside the frames).

    Detector values travel in every ``MovieAcquired`` to the motion corrector, where ``None`` is its
    service setting: ``gain_rotation_quarter_turns`` (0-3, counter-clockwise, MotionCor2's ``-RotGain``) and
    ``gain_flip`` (0 none, 1 upside down, 2 left-right, after the rotation: ``-FlipGain``);
    ``eer_group_frames`` EER frames per output frame (0: grouped by dose), else
    ``eer_dose_per_output_frame_e_per_angstrom2`` (set alone, it groups by that dose); ``eer_sampling`` 1
    or 2; ``defect_file`` (MotionCor2's ``-DefectFile``) relative to the session directory.
    ``frame_halves`` switches the even/odd frame sums (and so the half tomograms and their FSC
    resolution) on or off for the session; ``None`` leaves it to the motion-correction service (on).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=0, ge=0)
    tilt_axis_angle_degrees: float | None = Field(default=None, ge=-360, le=360)
    pixel_size_angstroms: float | None = Field(default=None, gt=0, le=50)
    voltage_kv: float | None = Field(default=None, gt=0, le=1000)
    spherical_aberration_mm: float | None = Field(default=None, ge=0, le=20)
    dose_per_tilt_e_per_angstrom2: float | None = Field(default=None, gt=0, le=1000)
    dose_per_frame_e_per_angstrom2: float | None = Field(default=None, gt=0, le=100)
    time_zone: str | None = None
    gain_reference: str | None = None
    gain_rotation_quarter_turns: int | None = Field(default=None, ge=0, le=3)
    gain_flip: int | None = Field(default=None, ge=0, le=2)
    eer_group_frames: int | None = Field(default=None, ge=0, le=100_000)
    eer_dose_per_output_frame_e_per_angstrom2: float | None = Field(default=None, gt=0, le=20)
    eer_sampling: int | None = Field(default=None, ge=1, le=2)
    defect_file: str | None = None
    frame_halves: bool | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            microscope_zone(value)
        return value

    def zone(self) -> tzinfo:
        """The microscope's time zone (this host's when unset)."""
        return microscope_zone(self.time_zone)


def microscope_zone(name: str | None) -> tzinfo:
    """The IANA zone ``name``, or this host's local zone for ``None``; ``ValueError`` if unknown."""
    if name is None:
        return _host_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time zone {name!r} is not an IANA zone name (e.g. Europe/London)") from exc


def _host_zone() -> tzinfo:
    """This host's zone with its daylight-saving rules: ``TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    if localtime.exists():
        with localtime.open("rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    return UTC


def parse_assignments(assignments: list[str], base: SessionParameters | None = None) -> SessionParameters:
    """``KEY=VALUE`` strings applied over ``base`` (``KEY=`` unsets a key); ``ValueError`` naming the key
    and the reason for an unknown key or a value of the wrong type."""
    values: dict[str, object] = (base or SessionParameters()).model_dump()
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{item!r} is not KEY=VALUE")
        if key not in SessionParameters.model_fields or key == "version":
            known = ", ".join(k for k in SessionParameters.model_fields if k != "version")
            raise ValueError(f"unknown session parameter {key!r} (known: {known})")
        values[key] = value.strip() or None
    try:
        return SessionParameters.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"bad session parameter value: {problems}") from exc
