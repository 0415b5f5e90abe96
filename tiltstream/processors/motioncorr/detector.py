"""A movie's detector set-up: the session's values in its ``MovieAcquired``, else the service's settings.

The operator sets gain orientation, EER grouping and sampling and the defect file per session
(``tiltstream session set``); the source copies the version in force into every ``MovieAcquired``, where
null means "not set for the session". :func:`detector_setup` resolves one movie's values once, so the
builtin backend and the MotionCor2 command line apply the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tiltstream.processors.motioncorr.settings import MotionCorrectionSettings
from tiltstream.streams.events import DataPath, MovieAcquired

__all__ = ["DetectorSetup", "detector_setup"]


@dataclass(frozen=True)
class DetectorSetup:
    """The values one movie is corrected with (see :class:`MotionCorrectionSettings` for each)."""

    gain_rotation_quarter_turns: int  # 0-3, counter-clockwise with y up (-RotGain)
    gain_flip: int  # 0 none, 1 upside down, 2 left-right, after the rotation (-FlipGain)
    eer_group_frames: int  # EER frames per output frame; 0: grouped by dose
    eer_dose_per_output_frame_e_per_angstrom2: float
    eer_sampling: int  # 1 physical pixels, 2 super-resolution
    defect_file: DataPath | Path | None  # the session's (a data path) or the service's (a local path)


def detector_setup(movie: MovieAcquired, settings: MotionCorrectionSettings) -> DetectorSetup:
    """``movie``'s session values where set, the service's ``settings`` elsewhere.

    A session dose per output frame set without a group size groups that session's EER movies by dose.
    The values' ranges are checked where events are made and read (``streams/validation_rules.py``).
    """
    group, dose = movie.eer_group_frames, movie.eer_dose_per_output_frame_e_per_angstrom2
    if group is None:
        group = 0 if dose is not None else settings.eer_group_frames
    defects = movie.defect_file or (
        Path(settings.motioncor_defect_file) if settings.motioncor_defect_file else None
    )
    return DetectorSetup(
        gain_rotation_quarter_turns=_or(
            movie.gain_rotation_quarter_turns, settings.gain_rotation_quarter_turns
        ),
        gain_flip=_or(movie.gain_flip, settings.gain_flip),
        eer_group_frames=group,
        eer_dose_per_output_frame_e_per_angstrom2=_or(
            dose, settings.eer_dose_per_output_frame_e_per_angstrom2
        ),
        eer_sampling=_or(movie.eer_sampling, settings.eer_sampling),
        defect_file=defects,
    )


_Value = TypeVar("_Value", int, float)


def _or(session: _Value | None, service: _Value) -> _Value:
    return service if session is None else session
