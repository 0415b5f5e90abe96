"""One PACE position (one tilt series) and the acquisition of one of its tilts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
import scipy.fft

from tiltstream.connectors.simulator.doming import Doming, random_doming
from tiltstream.connectors.simulator.faults import FaultKind
from tiltstream.connectors.simulator.gain_reference import thin_by_sensitivity
from tiltstream.connectors.simulator.ground_truth import SeriesTruth, TiltTruth
from tiltstream.connectors.simulator.imaging import CtfParameters, ctf_2d, frame_drift_pixels, simulate_frames
from tiltstream.connectors.simulator.mdoc_writer import MdocWriter, serialem_datetime
from tiltstream.connectors.simulator.phantom import Phantom
from tiltstream.connectors.simulator.projection import project_phantom
from tiltstream.connectors.simulator.settings import SimulatorSettings
from tiltstream.connectors.source.parameters import microscope_zone

__all__ = ["Position", "acquire_tilt"]

#: Fraction of the expected counts that reach the detector in a dark tilt.
DARK_FRACTION = 0.02


@dataclass
class Position:
    """The state of one position while its series is acquired."""

    name: str
    index: int
    rng: np.random.Generator
    phantom: Phantom
    truth: SeriesTruth
    mdoc: MdocWriter
    perpendicular_micrometres: float
    faults: set[tuple[FaultKind, int]] = field(default_factory=set)
    prior_dose_e_per_angstrom2: float = 0.0
    specimen_shift_angstroms: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    sensitivity: npt.NDArray[np.float32] | None = None  # (h, w) the detector's; None: flat


def acquire_tilt(
    pos: Position,
    settings: SimulatorSettings,
    index: int,
    angle: float,
    moment: datetime,
    *,
    first_of_retake: bool = False,
) -> tuple[TiltTruth, npt.NDArray[np.uint8], dict[str, str]]:
    """Image the position at nominal ``angle`` (scheme index ``index``).

    The true angle carries the series' offset and a little jitter; the defocus follows the target plus
    the position's height change with tilt that PACE-tomo does not fully compensate; the specimen
    wanders a little between tilts; the movie drifts. The first take of a retaken tilt drifts badly.

    Returns
    -------
    truth, frames, mdoc_fields
        The tilt's ground truth, its ``(t, h, w)`` frames and the mdoc section's fields.
    """
    fault, dark = _tilt_faults(pos, index, first_of_retake=first_of_retake)
    true_angle = angle + pos.truth.tilt_angle_offset_degrees + float(pos.rng.normal(0, 0.05))
    fov = settings.size_pixels * settings.pixel_size_angstroms
    pos.specimen_shift_angstroms = 0.7 * pos.specimen_shift_angstroms + pos.rng.normal(0, 0.01 * fov, 2)
    optics = _optics(pos, settings, angle)
    drift_scale = 6.0 if first_of_retake else 1.0
    drift = frame_drift_pixels(
        pos.rng, settings.frames, settings.drift_angstroms * drift_scale, settings.pixel_size_angstroms
    )
    doming = _doming(pos, settings)
    dose = settings.dose_per_tilt_e_per_angstrom2 * (DARK_FRACTION if dark else 1.0)
    frames = _image(pos, settings, true_angle, optics, dose, (drift, doming))
    if pos.sensitivity is not None:
        frames = thin_by_sensitivity(frames, pos.sensitivity, pos.rng)
    ext = settings.movie_format
    movie = f"frames/{pos.name}_{pos.mdoc.sections + 1:03d}_{angle:.2f}_fractions.{ext}"
    fields = _mdoc_fields(pos, settings, angle, dose, movie, moment, frames)
    truth = TiltTruth(
        z_value=pos.mdoc.sections,
        scheme_index=index,
        movie=movie,
        nominal_tilt_angle_degrees=angle,
        true_tilt_angle_degrees=true_angle,
        defocus_u_angstroms=optics.defocus_u_angstroms,
        defocus_v_angstroms=optics.defocus_v_angstroms,
        astigmatism_angle_degrees=optics.astigmatism_angle_degrees,
        dose_e_per_angstrom2=dose,
        prior_dose_e_per_angstrom2=pos.prior_dose_e_per_angstrom2,
        specimen_shift_angstroms=[float(v) for v in pos.specimen_shift_angstroms],
        frame_shifts_pixels=[[float(x), float(y)] for x, y in drift],
        acquired_at=moment.isoformat(),
        dark=dark,
        fault=fault.value if fault is not None else None,
        doming=asdict(doming) if doming is not None else None,
    )
    pos.prior_dose_e_per_angstrom2 += float(f"{dose:.3f}")
    return truth, frames, fields


def _tilt_faults(pos: Position, index: int, *, first_of_retake: bool) -> tuple[FaultKind | None, bool]:
    """The file fault (missing, corrupt, truncated) and darkness planned for tilt ``index``.

    The first take of a retaken tilt is written intact and lit: its retake carries the fault.
    """
    faults = {kind for kind, tilt in pos.faults if tilt == index}
    fault: FaultKind | None = None
    for kind in (FaultKind.MISSING, FaultKind.CORRUPT, FaultKind.TRUNCATED):
        if kind in faults and not first_of_retake:
            fault = kind
    return fault, FaultKind.DARK in faults and not first_of_retake


def _optics(pos: Position, settings: SimulatorSettings, angle: float) -> CtfParameters:
    """The tilt's CTF: the target defocus plus the height change with tilt PACE-tomo leaves, astigmatic."""
    sin_t = math.sin(math.radians(angle))
    mean_defocus = (
        -settings.target_defocus_micrometres * 1e4
        + 0.1 * pos.perpendicular_micrometres * sin_t * 1e4
        + float(pos.rng.normal(0, 1000.0))
    )
    astig_angle = float((pos.index * 37.0 + pos.rng.normal(0, 3.0)) % 180)
    half = settings.astigmatism_angstroms / 2
    return CtfParameters(
        defocus_u_angstroms=mean_defocus + half,
        defocus_v_angstroms=mean_defocus - half,
        astigmatism_angle_degrees=astig_angle,
        voltage_kv=settings.voltage_kv,
        spherical_aberration_mm=settings.spherical_aberration_mm,
        amplitude_contrast=settings.amplitude_contrast,
        b_factor_angstroms2=settings.b_factor_angstroms2,
    )


def _doming(pos: Position, settings: SimulatorSettings) -> Doming | None:
    """The tilt's local motion, when the session simulates it."""
    if settings.doming_angstroms == 0:
        return None
    amplitude = settings.doming_angstroms / settings.pixel_size_angstroms
    return random_doming(pos.rng, settings.size_pixels, settings.frames, amplitude)


def _image(
    pos: Position,
    settings: SimulatorSettings,
    true_angle: float,
    optics: CtfParameters,
    dose: float,
    motion: tuple[npt.NDArray[np.float64], Doming | None],
) -> npt.NDArray[np.uint8]:
    """Project the phantom at ``true_angle`` on a padded field; record the drifting (and doming) ``(t, h, w)``
    frames."""
    drift, doming = motion
    size, pix = settings.size_pixels, settings.pixel_size_angstroms
    margin = int(np.ceil(np.abs(drift).max() + (doming.amplitude_pixels if doming else 0))) + 4
    margin += (scipy.fft.next_fast_len(size + 2 * margin, real=True) - size - 2 * margin + 1) // 2
    padded = (size + 2 * margin, size + 2 * margin)
    phase, attenuation = project_phantom(
        pos.phantom,
        tilt_degrees=true_angle,
        tilt_axis_angle_degrees=pos.truth.true_tilt_axis_angle_degrees,
        shape=padded,
        pixel_size_angstroms=pix,
        specimen_shift_angstroms=(
            float(pos.specimen_shift_angstroms[0]),
            float(pos.specimen_shift_angstroms[1]),
        ),
        voltage_kv=settings.voltage_kv,
        inelastic_mean_free_path_angstroms=settings.inelastic_mean_free_path_angstroms,
        texture_radians=settings.ice_texture_radians,
        rng=pos.rng,
    )
    return simulate_frames(
        phase,
        attenuation,
        ctf=ctf_2d(padded, pix, optics),
        counts_per_pixel_per_frame=dose * pix * pix / settings.frames,
        drift_pixels=drift,
        margin_pixels=margin,
        rng=pos.rng,
        doming=doming,
    )


def _mdoc_fields(
    pos: Position,
    settings: SimulatorSettings,
    angle: float,
    dose: float,
    movie: str,
    moment: datetime,
    frames: npt.NDArray[np.uint8],
) -> dict[str, str]:
    """The mdoc section SerialEM writes for this tilt."""
    summed = frames.sum(axis=0, dtype=np.uint32)  # (h, w)
    return {
        "TiltAngle": f"{angle:.2f}",
        "StagePosition": "112.500 -42.250",
        "StageZ": "-11.40",
        "Magnification": "64000",
        "Intensity": "0.114532",
        "ExposureDose": f"{dose:.3f}" if settings.exposure_dose_written else "0",
        "PixelSpacing": f"{settings.pixel_size_angstroms:g}",
        "SpotSize": "8",
        "Defocus": f"{settings.target_defocus_micrometres:.3f}",
        "ImageShift": " ".join(f"{v:.4f}" for v in pos.truth.image_shift_micrometres),
        "RotationAngle": f"{_rotation_angle(settings):.2f}",
        "ExposureTime": f"{settings.exposure_time_seconds:g}",
        "Binning": "1",
        "MagIndex": "31",
        "MinMaxMean": f"{int(summed.min())} {int(summed.max())} {float(summed.mean()):.3f}",
        "TargetDefocus": f"{settings.target_defocus_micrometres:g}",
        "PriorRecordDose": f"{pos.prior_dose_e_per_angstrom2:.3f}" if settings.exposure_dose_written else "0",
        "SubFramePath": "X:\\" + settings_session(pos) + "\\" + movie.replace("/", "\\"),
        "NumSubFrames": str(
            settings.frames * (settings.eer_frames_per_frame if settings.movie_format == "eer" else 1)
        ),
        "DateTime": serialem_datetime(moment.astimezone(microscope_zone(settings.microscope_time_zone))),
    }


def _rotation_angle(settings: SimulatorSettings) -> float:
    """Tomography 5 writes the tilt axis in RotationAngle; SerialEM writes something about 90° off."""
    if settings.mdoc_writer == "tomo5":
        return settings.tilt_axis_angle_degrees
    return settings.tilt_axis_angle_degrees + settings.rotation_angle_offset_degrees


def settings_session(pos: Position) -> str:
    """The session folder name SerialEM's sub-frame paths start with."""
    return pos.truth.session_id
