"""Topaz's pretrained 3-D denoisers, loaded from the weights shipped inside the topaz-em wheel.

topaz-em 0.3.20's own loader needs ``pkg_resources`` (absent on Python 3.11 without setuptools'
legacy API), so the state dict is read from the package's data with :mod:`importlib.resources` and
loaded into ``UDenoiseNet3D(base_width=7)``, the architecture those weights were trained with.
No download happens at run time.
"""

from __future__ import annotations

import importlib.resources

import torch
from topaz.denoising.models import UDenoiseNet3D

from tiltstream.processors.runtime.errors import ImpossibleParametersError

__all__ = ["MODELS", "load_topaz_model"]

#: model name -> weights file inside ``topaz/pretrained/denoise``
MODELS = {
    "unet-3d-10a": "unet-3d-10a-v0.2.4.sav",
    "unet-3d-20a": "unet-3d-20a-v0.2.4.sav",
}


def load_topaz_model(name: str, device: torch.device) -> torch.nn.Module:
    """The pretrained network ``name`` in evaluation mode on ``device``.

    Raises
    ------
    ImpossibleParametersError
        ``name`` is not one of :data:`MODELS`.
    """
    if name not in MODELS:
        raise ImpossibleParametersError(f"unknown denoising model {name!r} (known: {', '.join(MODELS)})")
    resource = importlib.resources.files("topaz") / "pretrained" / "denoise" / MODELS[name]
    with importlib.resources.as_file(resource) as path:
        state = torch.load(path, map_location="cpu", weights_only=False)
    model: torch.nn.Module = UDenoiseNet3D(base_width=7)
    model.load_state_dict(state)
    return model.eval().to(device)
