"""Settings of the microscope simulator (``TILTSTREAM_SIMULATOR_*``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SimulatorSettings"]


class SimulatorSettings(BaseSettings):
    """What one simulated session looks like: geometry, optics, dose, detector, pace and faults.

    Defaults describe a 300 kV Krios-like microscope collecting dose-symmetric tilt series (±60° by
    3°) with a counting detector; ``size_pixels`` may range from 256 (tests) to 4096 (real detectors).
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_SIMULATOR_", frozen=True, extra="ignore")

    session_id: str | None = None
    microscope: str = "m01"
    seed: int = 0
    positions: int = Field(default=1, ge=1, le=64)
    size_pixels: int = Field(default=1024, ge=64, le=8192)
    frames: int = Field(default=10, ge=1, le=200)
    movie_format: Literal["tiff", "mrc", "eer"] = "tiff"
    eer_frames_per_frame: int = Field(default=20, ge=1, le=200)  # EER: electron frames per movie frame
    # the detector's uneven sensitivity and its gain reference (gain_reference.py): "none" is a flat
    # detector (frames gain-corrected); else frames/CountRef_<session>.{mrc,tiff,gain}, stored turned so
    # that this rotation (quarter turns, counter-clockwise, y up) and then this flip fit it to the frames
    gain_reference: Literal["none", "mrc", "tiff", "gain"] = "none"
    gain_rotation_quarter_turns: int = Field(default=0, ge=0, le=3)
    gain_flip: int = Field(default=0, ge=0, le=2)  # 0 none, 1 upside down, 2 left to right
    scheme: Literal["dose-symmetric", "bidirectional"] = "dose-symmetric"
    max_tilt_degrees: float = Field(default=60.0, gt=0, le=80)
    tilt_step_degrees: float = Field(default=3.0, gt=0)
    dose_symmetric_group: int = Field(default=2, ge=1)
    bidirectional_start_degrees: float = 0.0
    tilt_axis_angle_degrees: float = 85.0
    pixel_size_angstroms: float = Field(default=1.5, gt=0)
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = Field(default=0.07, ge=0, lt=1)
    b_factor_angstroms2: float = 60.0
    target_defocus_micrometres: float = -4.0
    astigmatism_angstroms: float = 400.0
    dose_per_tilt_e_per_angstrom2: float = Field(default=3.0, gt=0)
    exposure_time_seconds: float = Field(default=0.6, gt=0)
    seconds_per_tilt: float = Field(default=6.0, gt=0)
    ice_thickness_angstroms: float = Field(default=1800.0, gt=100)
    inelastic_mean_free_path_angstroms: float = 3800.0
    particles_per_square_micrometre: float = 1200.0
    vesicles_per_square_micrometre: float = 6.0
    gold_beads_per_square_micrometre: float = 40.0
    ice_texture_radians: float = Field(default=0.12, ge=0)
    drift_angstroms: float = Field(default=8.0, ge=0)
    doming_angstroms: float = Field(default=0.0, ge=0)  # local motion (doming.py): largest shift; 0 none
    beam_shift_spacing_micrometres: float = 2.5
    rate_movies_per_second: float = Field(default=0.0, ge=0)
    write_fraction: float = Field(default=0.5, ge=0, le=1)
    start_time: datetime = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    # what real microscopes write (see FACTS.md): selectable per session
    mdoc_writer: Literal["serialem", "tomo5"] = "serialem"
    axis_header: bool = True  # SerialEM's [T = Tilt axis angle = ...] line; False: left out
    rotation_angle_offset_degrees: float = 90.0  # SerialEM's RotationAngle is not the axis (85.3 vs 175.3)
    exposure_dose_written: bool = True  # False: ExposureDose = 0, as SerialEM writes when uncalibrated
    microscope_time_zone: str | None = None  # the zone DateTime is written in (None: this host's)
