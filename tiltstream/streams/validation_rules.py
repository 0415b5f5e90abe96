"""Physical ranges of event fields, found from the units in their names.

Field names carry their units (``tilt_angle_degrees``, ``pixel_size_angstroms``, ``voltage_kv``), so
one table of name patterns gives every numeric field of every schema its range; a new field named
after the same convention is checked without a change here. The first pattern that matches a field
name wins; a floating-point field no pattern matches must still be finite.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["FLOAT_MAX", "RULES", "Range", "ValidationSettings", "range_for", "validation_settings"]

#: Bounds of a "finite" number: NaN and the infinities fail ``-FLOAT_MAX <= x <= FLOAT_MAX``.
FLOAT_MAX = 1.7976931348623157e308


class ValidationSettings(BaseSettings):
    """Limits that depend on the facility's detectors (``TILTSTREAM_VALIDATION_*``)."""

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_VALIDATION_", frozen=True, extra="ignore")

    #: Most frames one movie may have (EER movies have thousands of raw frames).
    max_frame_count: int = Field(default=10_000, ge=1)


@cache
def validation_settings() -> ValidationSettings:
    """The validation settings of this process, read once."""
    return ValidationSettings()


@dataclass(frozen=True)
class Range:
    """Allowed values ``[low, high]`` (``(low, high]`` when ``low_open``), in ``unit``."""

    low: float
    high: float
    unit: str = ""
    low_open: bool = False

    def contains(self, number: float) -> bool:
        """True when ``number`` lies in the range (never for NaN)."""
        above = number > self.low if self.low_open else number >= self.low
        return above and number <= self.high

    def describe(self, number: float) -> str:
        """Why ``number`` is refused, e.g. ``'9999.0 degrees is outside [-90, 90]'``."""
        if isinstance(number, float) and not math.isfinite(number):
            return f"{number!r} is not a finite number"
        low = "(" if self.low_open else "["
        unit = f" {self.unit}" if self.unit else ""
        return f"{number!r}{unit} is outside {low}{self.low:g}, {self.high:g}]"


_FINITE = Range(-FLOAT_MAX, FLOAT_MAX)
_NON_NEGATIVE = Range(0.0, FLOAT_MAX)
_DEFOCUS_ANGSTROMS = 200_000.0  # 20 µm either side of focus

#: ``(pattern, range)``: the first pattern that matches the whole field name gives its range.
#: ``None`` as the high bound of a frame rule is replaced by the ``max_frame_count`` setting.
RULES: tuple[tuple[str, Range | None], ...] = (
    (r"(nominal_|refined_)?tilt_angle_degrees", Range(-90.0, 90.0, "degrees")),
    (r"tilt_angle_offset_degrees", Range(-90.0, 90.0, "degrees")),
    (r".*_degrees", Range(-360.0, 360.0, "degrees")),
    (r"pixel_size_angstroms", Range(0.0, 50.0, "Å", low_open=True)),
    (r"pixel_spacing_angstroms", Range(0.0, 1000.0, "Å", low_open=True)),  # after binning
    (r"voltage_kv", Range(60.0, 400.0, "kV")),
    (r"spherical_aberration_mm", Range(0.0, 10.0, "mm")),
    (r"amplitude_contrast", Range(0.0, 1.0)),
    (r"fit_score|.*_correlation", Range(-1.0, 1.0)),
    (r".*dose.*_e_per_angstrom2", Range(0.0, 10_000.0, "e/Å²")),
    (r"defocus_[uv]_angstroms|astigmatism_angstroms", Range(-_DEFOCUS_ANGSTROMS, _DEFOCUS_ANGSTROMS, "Å")),
    (r".*defocus_micrometres", Range(-_DEFOCUS_ANGSTROMS / 1e4, _DEFOCUS_ANGSTROMS / 1e4, "µm")),
    (r".*resolution_angstroms", Range(0.0, 10_000.0, "Å", low_open=True)),
    (r".*thickness_angstroms", Range(0.0, 100_000.0, "Å", low_open=True)),
    (r".*(motion.*|residual_error.*)_angstroms", Range(0.0, FLOAT_MAX, "Å")),
    (r".*_seconds", Range(0.0, FLOAT_MAX, "s")),
    (r"frame_count", None),
    (r"frame_index|first_frame|last_frame", None),
    (r"binning", Range(1.0, 1024.0)),
    (r".*_counts_per_pixel_per_second", _NON_NEGATIVE),
    (r"gain_rotation_quarter_turns", Range(0.0, 3.0, "quarter turns")),  # MotionCor2's -RotGain
    (r"gain_flip", Range(0.0, 2.0)),  # -FlipGain: 0 none, 1 upside down, 2 left-right
    (r"eer_sampling", Range(1.0, 2.0)),  # -EerSampling
    (r"eer_group_frames", _NON_NEGATIVE),
    (r".*_pixels", Range(0.0, 1_000_000.0, "pixels")),
    (r".*_count|.*_tilts|acquisition_order|version|latest_version|attempts?|patches_[xy]", _NON_NEGATIVE),
)

_COMPILED = tuple((re.compile(pattern), rule) for pattern, rule in RULES)


def range_for(field_name: str, *, floating: bool) -> Range | None:
    """The range of the field ``field_name``; ``None`` when it has none.

    Parameters
    ----------
    field_name
        The field's own name (not its dotted path).
    floating
        A ``double``/``float`` field: one without a rule must still be finite.
    """
    for pattern, rule in _COMPILED:
        if pattern.fullmatch(field_name):
            if rule is not None:
                return rule
            frames = validation_settings().max_frame_count
            low = 1.0 if field_name == "frame_count" else 0.0
            return Range(low, float(frames), "frames")
    return _FINITE if floating else None
