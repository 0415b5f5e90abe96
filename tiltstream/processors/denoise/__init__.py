"""Tomogram denoising: ``tomogram.reconstructed`` -> ``tomogram.denoised`` (Topaz 3-D networks).

Names are imported on first use, so that a backend module (``tiled``) can be imported on its own
(e.g. by the benchmarks) and nothing here imports torch until a tomogram is denoised.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiltstream.processors.denoise.processor import DenoiseProcessor
    from tiltstream.processors.denoise.settings import DenoiseSettings

__all__ = ["DenoiseProcessor", "DenoiseSettings"]

_MODULES = {"DenoiseProcessor": "processor", "DenoiseSettings": "settings"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
