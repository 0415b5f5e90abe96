"""Denoising a volume of any size in cubic patches with context padding (bounded memory)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["denoise_volume"]


def denoise_volume(
    volume: np.ndarray,  # (d, h, w)
    model: torch.nn.Module,
    device: torch.device,
    patch_size_pixels: int = 96,
    padding_pixels: int = 48,
) -> np.ndarray:  # (d, h, w) float32
    """Run ``model`` over ``volume`` patch by patch.

    Each ``patch_size`` cube is denoised with ``padding`` voxels of context on every side (mirrored
    at the volume's faces) and only its centre is kept, so seams carry no edge effects and memory
    depends on the patch, not on the volume. The volume is normalised by its global mean and
    standard deviation (as Topaz does), the output scaled back.
    """
    data = np.asarray(volume, dtype=np.float32)
    mean, std = float(data.mean()), float(data.std()) or 1.0
    out = np.empty_like(data)
    p, pad = patch_size_pixels, padding_pixels
    starts = [range(0, n, p) for n in data.shape]
    with torch.no_grad():
        for z, y, x in itertools.product(*starts):
            lo = [max(0, c - pad) for c in (z, y, x)]
            hi = [min(n, c + p + pad) for c, n in zip((z, y, x), data.shape, strict=True)]
            block = data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
            before = [c - low for c, low in zip((z, y, x), lo, strict=True)]
            after = [
                (c + p + pad) - high for c, high in zip((z, y, x), hi, strict=True)
            ]  # missing context beyond the far faces
            widths = [(pad - b, a) for b, a in zip(before, after, strict=True)]
            block = np.pad(block, widths, mode="symmetric")  # (p + 2 pad)³
            tensor = torch.from_numpy((block - mean) / std).to(device)[None, None]
            result = model(tensor)[0, 0].cpu().numpy() * std + mean
            core = result[pad : pad + p, pad : pad + p, pad : pad + p]
            dz, dy, dx = (min(p, n - c) for c, n in zip((z, y, x), data.shape, strict=True))
            out[z : z + dz, y : y + dy, x : x + dx] = core[:dz, :dy, :dx]
    return out
