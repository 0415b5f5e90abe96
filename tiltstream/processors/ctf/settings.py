"""Settings of the CTF-estimation service (``TILTSTREAM_CTF_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = ["CtfSettings"]


class CtfSettings(ProcessorSettings):
    """CTF estimation: consumes ``movie.motion-corrected``, emits ``micrograph.ctf-estimated``.

    The optics (voltage, Cs, amplitude contrast) come from the event; the values here are used
    only for events written before those fields existed.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_CTF_", frozen=True, extra="ignore")

    group_id: str = "tiltstream-ctf"
    backend: Literal["builtin", "ctffind"] = "builtin"
    #: The builtin backend's fit: tiltstream's own (fast; defocus and astigmatism) or teamtomo's
    #: torch-ctf-estimation (the reference; also the one used when ``estimate_thickness`` is on).
    builtin_method: Literal["tiltstream", "torch-ctf-estimation"] = "tiltstream"
    box_size_pixels: int = Field(default=512, ge=64)
    min_resolution_angstroms: float = Field(default=30.0, gt=0)
    max_resolution_angstroms: float = Field(default=5.0, gt=0)
    min_defocus_angstroms: float = Field(default=5000.0, ge=0)
    max_defocus_angstroms: float = Field(default=80000.0, gt=0)
    defocus_step_angstroms: float = Field(default=500.0, gt=0)
    #: The own fit searches within this of the movie's target defocus (the mdoc's TargetDefocus), when known.
    target_window_angstroms: float = Field(default=25000.0, gt=0)
    estimate_thickness: bool = False
    default_voltage_kv: float = 300.0
    default_spherical_aberration_mm: float = 2.7
    default_amplitude_contrast: float = 0.07
    output_folder: str = "ctf"
    ctffind_executable: str = "ctffind"
    #: Which prompt sequence to answer: "auto" asks ``ctffind --version`` once per process.
    ctffind_version: Literal["auto", "4", "5"] = "auto"
    #: CTFFIND5 only: also fit the sample's tilt (thickness follows ``estimate_thickness``).
    estimate_sample_tilt: bool = False
    ctffind_timeout_seconds: float = Field(default=600.0, gt=0)
