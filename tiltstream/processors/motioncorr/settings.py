"""Settings of the motion-correction service (``TILTSTREAM_MOTIONCORR_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = ["MotionCorrectionSettings"]


class MotionCorrectionSettings(ProcessorSettings):
    """Motion correction: consumes ``movie.acquired``, emits ``movie.motion-corrected``.

    ``patches_x`` x ``patches_y`` of 1 x 1 fits only whole-frame (global) motion; more adds the
    patch-based local fit. ``binning`` 2 Fourier-crops super-resolution movies.

    EER movies: ``eer_group_frames`` EER frames are summed into each output frame (0: as many as make
    ``eer_dose_per_output_frame_e_per_angstrom2`` given the movie's dose, or, the dose unknown, as many as
    make ``eer_output_frames_without_dose`` output frames), rendered at
    ``eer_sampling`` 1 (physical pixels) or 2 (super-resolution: half the pixel size). The gain
    reference is turned by ``gain_rotation_quarter_turns`` (90 degrees counter-clockwise each, y up) and then
    ``gain_flip`` (1 upside down, 2 left-right), as MotionCor2's ``-RotGain`` / ``-FlipGain``;
    ``motioncor_defect_file`` is passed to MotionCor2 as ``-DefectFile`` and applied by the builtin backend.
    Each of these is the service's default: a session sets its own (``tiltstream session set``), which
    reaches here in the movie's ``MovieAcquired`` and wins (:mod:`.detector`).
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_MOTIONCORR_", frozen=True, extra="ignore")

    group_id: str = "tiltstream-motioncorr"
    backend: Literal["builtin", "motioncor2"] = "builtin"
    patches_x: int = Field(default=5, ge=1, le=20)
    patches_y: int = Field(default=5, ge=1, le=20)
    binning: Literal[1, 2] = 1
    dose_weighting: bool = True
    #: The builtin backend's smooth-trajectory prior: the expected second difference of the drift in
    #: Å per frame², weighed against each frame's shot noise (it matters only at low dose); 0: off.
    drift_curvature_angstroms: float = Field(default=1.5, ge=0)
    #: The builtin local (patch) model's smoothness across patches: the expected second difference of the
    #: local displacement from one patch to the next, in Å; smaller follows the patches less.
    local_curvature_angstroms: float = Field(default=0.5, gt=0)
    eer_group_frames: int = Field(default=0, ge=0)
    eer_dose_per_output_frame_e_per_angstrom2: float = Field(default=0.3, gt=0, le=20)
    eer_output_frames_without_dose: int = Field(default=10, ge=2)
    eer_sampling: Literal[1, 2] = 1
    gain_rotation_quarter_turns: Literal[0, 1, 2, 3] = 0
    gain_flip: Literal[0, 1, 2] = 0
    write_not_dose_weighted: bool = True
    #: Also write the sums of the even and the odd frames (``<movie>_EVN.mrc`` / ``_ODD.mrc``, weighted
    #: like the micrograph; MotionCor2's ``-SplitSum 1``): the halves the reconstruction makes its two
    #: half tomograms (FSC resolution, Noise2Noise pairs) from.
    frame_halves: bool = True
    thumbnail_pixels: int = Field(default=512, ge=64)
    output_folder: str = "motioncorr"
    motioncor_executable: str = "MotionCor2"
    motioncor_gpu: str = "0"
    motioncor_iterations: int = Field(default=10, ge=1)
    motioncor_tolerance_pixels: float = Field(default=0.5, gt=0)
    motioncor_timeout_seconds: float = Field(default=1800.0, gt=0)
    motioncor_defect_file: str | None = None
