"""Choosing the torch device for the GPU backends (imports torch: only backends use it)."""

from __future__ import annotations

import torch

from tiltstream.processors.runtime.errors import ImpossibleParametersError

__all__ = ["resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``cuda`` when asked for and present, ``cpu`` when asked for; ``auto`` picks CUDA if available.

    Raises
    ------
    ImpossibleParametersError
        ``cuda`` was required but no CUDA device is present.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ImpossibleParametersError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)
