"""Settings of the denoising service (``TILTSTREAM_DENOISE_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = ["DenoiseSettings"]


class DenoiseSettings(ProcessorSettings):
    """Denoising: consumes ``tomogram.reconstructed``, emits ``tomogram.denoised``.

    The volume is processed in ``patch_size_pixels`` cubes with ``padding_pixels`` of context each
    side: GPU memory depends on ``patch + 2 * padding``, never on the tomogram's size.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_DENOISE_", frozen=True, extra="ignore")

    group_id: str = "tiltstream-denoise"
    drain_deadline_seconds: float = Field(default=600.0, ge=0)
    model: Literal["unet-3d-10a", "unet-3d-20a"] = "unet-3d-10a"
    patch_size_pixels: int = Field(default=96, ge=8, le=512)
    padding_pixels: int = Field(default=48, ge=0, le=256)
    png_max_pixels: int = Field(default=1024, ge=64)
