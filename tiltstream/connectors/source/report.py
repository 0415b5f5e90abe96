"""What the source would announce for an mdoc, or why it refuses it (``tiltstream mdoc inspect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiltstream.connectors.source.errors import AcquisitionInputError
from tiltstream.connectors.source.mdoc import read_mdoc, series_name
from tiltstream.connectors.source.parameters import SessionParameters

__all__ = ["describe_mdoc"]


def describe_mdoc(path: Path, parameters: SessionParameters | None = None) -> dict[str, Any]:
    """The series the source would announce for ``path`` with ``parameters``, as JSON-ready values.

    ``refused`` is ``None`` for a series it would announce, else the reason (and nothing else is set but
    ``file`` and ``series``); times are ISO 8601 UTC.
    """
    out: dict[str, Any] = {"file": str(path), "series": series_name(path), "refused": None}
    try:
        info = read_mdoc(path, parameters)
    except (AcquisitionInputError, OSError) as exc:
        out["refused"] = f"{type(exc).__name__}: {exc}"
        return out
    out |= {
        "writer": info.writer,
        "tilt_axis_angle_degrees": info.tilt_axis_angle_degrees,
        "tilt_axis_source": info.tilt_axis_source,
        "pixel_size_angstroms": info.pixel_size_angstroms,
        "voltage_kv": info.voltage_kv,
        "dose_known": info.dose_known(),
        "dose_weighting": "on"
        if info.dose_known()
        else "off (dose unknown: set dose_per_tilt_e_per_angstrom2)",
        "session_parameters_version": info.parameters_version,
        "distinct_angles": len(info.distinct_angles()),
        "tilts": [
            {
                "order": t.z_value,
                "tilt_angle_degrees": t.tilt_angle_degrees,
                "dose_e_per_angstrom2": t.dose_e_per_angstrom2,
                "dose_source": t.dose_source,
                "prior_dose_e_per_angstrom2": t.prior_dose_e_per_angstrom2,
                "pixel_size_angstroms": t.pixel_size_angstroms or info.pixel_size_angstroms,
                "movie": t.sub_frame_name,
                "acquired_at_utc": t.acquired_at.isoformat(),
            }
            for t in info.tilts
        ],
    }
    return out
