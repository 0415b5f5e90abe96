"""Motion correction: ``movie.acquired`` -> ``movie.motion-corrected``.

Names are imported on first use, so that a backend module (``builtin``) can be imported on its own,
e.g. by the GPU benchmark on a machine without the Kafka client, and so that nothing here imports
torch until a movie is corrected.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiltstream.processors.motioncorr.processor import MotionCorrectionProcessor
    from tiltstream.processors.motioncorr.settings import MotionCorrectionSettings

__all__ = ["MotionCorrectionProcessor", "MotionCorrectionSettings"]

_MODULES = {"MotionCorrectionProcessor": "processor", "MotionCorrectionSettings": "settings"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
