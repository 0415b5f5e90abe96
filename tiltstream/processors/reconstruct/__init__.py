"""Alignment and reconstruction: ``tiltseries.reconstruction-requested`` -> ``tomogram.reconstructed``.

Names are imported on first use, so that a backend module (``builtin``) can be imported on its own
(e.g. by the benchmarks) and nothing here imports torch until a series is reconstructed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiltstream.processors.reconstruct.processor import ReconstructionProcessor
    from tiltstream.processors.reconstruct.settings import ReconstructionSettings

__all__ = ["ReconstructionProcessor", "ReconstructionSettings"]

_MODULES = {"ReconstructionProcessor": "processor", "ReconstructionSettings": "settings"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
