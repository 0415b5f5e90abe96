"""The rows of a RELION 5 tomography project for one tilt series, from its events.

Column names and conventions are RELION 5's (``rln`` prefix, as the ``Import``, ``MotionCorr``,
``CtfFind``, ``ExcludeTiltImages``, ``AlignTiltSeries`` and ``ReconstructTomograms`` jobs write them,
and as eBIC's cryoem-services writes them for live sessions):

* angles in degrees: ``rlnTomoNominalStageTiltAngle`` (stage), ``rlnTomoNominalTiltAxisAngle``
  (from the image x axis); after alignment ``rlnTomoXTilt`` 0, ``rlnTomoYTilt`` the refined tilt,
  ``rlnTomoZRot`` the tilt axis from the image y axis (AreTomo's ``ROT``, our axis - 90);
* ``rlnTomoXShiftAngst`` / ``rlnTomoYShiftAngst``: the specimen's displacement in the raw tilt image
  in Å (AreTomo's ``TX``/``TY`` times the pixel size), the negative of our alignment shift;
* ``rlnMicrographPreExposure``: electrons per Å² before the tilt; defocus in Å, angle in degrees;
* ``rlnTomoHand`` -1 (the value eBIC and RELION's tutorial data use for these microscopes).

Tilts are listed in tilt-angle order, the order of the ``.tlt``/``.xf`` files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tiltstream.processors.runtime.output_paths import folder_name

__all__ = ["HALF_MICROGRAPH_COLUMNS", "TOMO_HAND", "SeriesTables", "series_tables"]

#: The handedness eBIC writes for its microscopes' tilt series.
TOMO_HAND = -1
OPTICS_GROUP = "optics1"

#: Turns an event's DataPath into the path written in the star files.
Locate = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class SeriesTables:
    """Everything the project holds about one tilt series."""

    name: str  # rlnTomoName
    version: int
    optics: dict[str, Any]  # the global row without the star-file column
    imported: pd.DataFrame
    corrected: pd.DataFrame
    ctf: pd.DataFrame
    selected: pd.DataFrame
    aligned: pd.DataFrame
    tomogram: dict[str, Any]  # tomograms.star columns besides the optics


def _sorted_tilts(request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(
        request["tilts"], key=lambda t: (float(t["tilt_angle_degrees"]), int(t["acquisition_order"]))
    )


def _import_row(tilt: Mapping[str, Any], axis_degrees: float) -> dict[str, Any]:
    return {
        "rlnMicrographMovieName": str(tilt["movie_id"]),
        "rlnTomoNominalStageTiltAngle": float(tilt["tilt_angle_degrees"]),
        "rlnTomoNominalTiltAxisAngle": axis_degrees,
        "rlnMicrographPreExposure": float(tilt["prior_dose_e_per_angstrom2"]),
    }


def _ctf_columns(tilt: Mapping[str, Any]) -> dict[str, Any]:
    u, v = float(tilt["defocus_u_angstroms"]), float(tilt["defocus_v_angstroms"])
    return {
        "rlnDefocusU": u,
        "rlnDefocusV": v,
        "rlnCtfAstigmatism": abs(u - v),
        "rlnDefocusAngle": float(tilt.get("astigmatism_angle_degrees") or 0.0),
    }


#: The per-tilt columns of the even- and odd-frame sums, as RELION 5's motion correction names them.
HALF_MICROGRAPH_COLUMNS = ("rlnMicrographNameEven", "rlnMicrographNameOdd")


def _half_columns(tilt: Mapping[str, Any], locate: Locate) -> dict[str, Any]:
    return {
        "rlnMicrographNameEven": locate(tilt["micrograph_even"]),
        "rlnMicrographNameOdd": locate(tilt["micrograph_odd"]),
    }


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _alignment_rows(
    base: list[dict[str, Any]], tilts: list[Mapping[str, Any]], event: Mapping[str, Any]
) -> list[dict[str, Any]]:
    by_movie = {str(a["movie_id"]): a for a in event["tilt_alignments"] if a["included"]}
    rows = []
    for row, tilt in zip(base, tilts, strict=True):
        alignment = by_movie.get(str(tilt["movie_id"]))
        if alignment is None:
            continue
        rows.append(
            row
            | {
                "rlnTomoXTilt": 0.0,
                "rlnTomoYTilt": float(alignment["refined_tilt_angle_degrees"]),
                "rlnTomoZRot": float(alignment["tilt_axis_angle_degrees"]) - 90.0,
                "rlnTomoXShiftAngst": -float(alignment["shift_x_angstroms"]),
                "rlnTomoYShiftAngst": -float(alignment["shift_y_angstroms"]),
            }
        )
    return rows


def series_tables(request: Mapping[str, Any], event: Mapping[str, Any], locate: Locate) -> SeriesTables:
    """The project's rows for the series of ``request`` (ReconstructionRequested) and ``event``.

    ``event`` is the TomogramReconstructed value; ``locate`` gives the path written for a DataPath.
    """
    name = folder_name(str(request["metadata"]["tilt_series_id"]))
    axis = float(request["tilt_axis_angle_degrees"])
    pixel = float(request["pixel_size_angstroms"])
    tilts = _sorted_tilts(request)
    imported = [_import_row(t, axis) for t in tilts]
    with_micrograph = [(r, t) for r, t in zip(imported, tilts, strict=True) if t.get("micrograph")]
    # RELION's even/odd columns (its motion correction's even/odd split) only when every tilt has both
    halves = bool(with_micrograph) and all(
        t.get("micrograph_even") and t.get("micrograph_odd") for _, t in with_micrograph
    )
    corrected = [
        r | {"rlnMicrographName": locate(t["micrograph"])} | (_half_columns(t, locate) if halves else {})
        for r, t in with_micrograph
    ]
    ctf = [
        r | _ctf_columns(t)
        for r, (_, t) in zip(corrected, with_micrograph, strict=True)
        if t.get("defocus_u_angstroms") is not None and t.get("defocus_v_angstroms") is not None
    ]
    kept = [(r, t) for r, (_, t) in zip(corrected, with_micrograph, strict=True) if not t["excluded"]]
    selected = [r | (_ctf_columns(t) if t.get("defocus_u_angstroms") is not None else {}) for r, t in kept]
    aligned = _alignment_rows(selected, [t for _, t in kept], event)
    columns = list(_import_row(tilts[0], axis)) if tilts else []
    mc_columns = [*columns, "rlnMicrographName", *(HALF_MICROGRAPH_COLUMNS if halves else ())]
    ctf_columns = [*mc_columns, "rlnDefocusU", "rlnDefocusV", "rlnCtfAstigmatism", "rlnDefocusAngle"]
    selected_columns = ctf_columns if all("rlnDefocusU" in r for r in selected) and selected else mc_columns
    optics = {
        "rlnVoltage": float(request["voltage_kv"]),
        "rlnSphericalAberration": float(request["spherical_aberration_mm"]),
        "rlnAmplitudeContrast": float(request["amplitude_contrast"]),
        "rlnMicrographOriginalPixelSize": pixel,
        "rlnTomoHand": TOMO_HAND,
        "rlnOpticsGroupName": OPTICS_GROUP,
        "rlnTomoTiltSeriesPixelSize": pixel,
    }
    binning = int(event["binning"])
    tomogram = {
        "rlnTomoTomogramBinning": float(binning),
        "rlnTomoSizeX": int(event["size_x_pixels"]) * binning,
        "rlnTomoSizeY": int(event["size_y_pixels"]) * binning,
        "rlnTomoSizeZ": int(event["size_z_pixels"]) * binning,
        "rlnTomoReconstructedTomogram": locate(event["tomogram"]),
    }
    if event.get("tomogram_even") and event.get("tomogram_odd"):  # the pair RELION's denoising trains on
        tomogram["rlnTomoReconstructedTomogramHalf1"] = locate(event["tomogram_even"])
        tomogram["rlnTomoReconstructedTomogramHalf2"] = locate(event["tomogram_odd"])
    return SeriesTables(
        name=name,
        version=int(request["version"]),
        optics=optics,
        imported=_frame(imported, columns),
        corrected=_frame(corrected, mc_columns),
        ctf=_frame(ctf, ctf_columns),
        selected=_frame([{k: r.get(k) for k in selected_columns} for r in selected], selected_columns),
        aligned=_frame(
            aligned,
            [
                *selected_columns,
                "rlnTomoXTilt",
                "rlnTomoYTilt",
                "rlnTomoZRot",
                "rlnTomoXShiftAngst",
                "rlnTomoYShiftAngst",
            ],
        ),
        tomogram=tomogram,
    )
