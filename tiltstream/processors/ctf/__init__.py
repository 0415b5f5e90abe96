"""CTF estimation: ``movie.motion-corrected`` -> ``micrograph.ctf-estimated``.

Names are imported on first use (see :mod:`tiltstream.processors.motioncorr`); the builtin backend
(tiltstream's own fit, or torch-ctf-estimation) only when a micrograph is fitted.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiltstream.processors.ctf.processor import CtfProcessor
    from tiltstream.processors.ctf.settings import CtfSettings

__all__ = ["CtfProcessor", "CtfSettings"]

_MODULES = {"CtfProcessor": "processor", "CtfSettings": "settings"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
