"""Sums of the even and the odd frames of an aligned movie: the two halves of its micrograph.

The frames ``0, 2, 4, ...`` (numbered from 0, in acquisition order) make the even sum and ``1, 3, 5,
...`` the odd one; each half has its own shot noise and the same specimen, so the two halves are the
independent pair a Noise2Noise denoiser trains on and the FSC between their tomograms measures.
Both are weighted and normalised exactly like the full sum (the same per-frame dose filters and the
same per-frequency renormalisation), so even + odd is the full sum: each half holds about half the
dose, not a rescaled copy of the whole.
"""

from __future__ import annotations

import torch

__all__ = ["frame_half_sums"]


def frame_half_sums(
    aligned: torch.Tensor,  # (t, h, w//2+1) half spectra of the aligned frames (not changed)
    shape: tuple[int, int],
    dose_filters: tuple[torch.Tensor, torch.Tensor] | None = None,  # (q (t, h, w//2+1), norm (h, w//2+1))
) -> tuple[torch.Tensor, torch.Tensor]:
    """The even- and odd-frame sums ``(even (h, w), odd (h, w))`` of ``aligned``.

    Parameters
    ----------
    aligned
        Half spectra (``rfft2``) of the frames, already aligned; read, not changed.
    shape
        ``(h, w)`` of the frames (the inverse transform's size).
    dose_filters
        ``(q, norm)`` as :func:`~tiltstream.processors.motioncorr.dose.dose_filters` returns them for
        the full movie: each frame is weighted by its ``q`` and each half multiplied by the full
        sum's ``norm``. ``None``: plain sums.

    Raises
    ------
    ValueError
        Fewer than two frames (no odd frame), or filters of another shape than the spectra.
    """
    frames = aligned.shape[0]
    if frames < 2:
        raise ValueError(f"{frames} frame(s): the even and odd halves need at least two")
    if dose_filters is not None and dose_filters[0].shape != aligned.shape:
        raise ValueError(f"dose filters {tuple(dose_filters[0].shape)} for spectra {tuple(aligned.shape)}")
    halves = []
    for first in (0, 1):
        total = torch.zeros_like(aligned[0])  # (h, w//2+1), one frame at a time: no (t/2, ...) copy
        for index in range(first, frames, 2):
            total += aligned[index] if dose_filters is None else aligned[index] * dose_filters[0][index]
        if dose_filters is not None:
            total *= dose_filters[1]
        halves.append(torch.fft.irfft2(total, s=shape))
    return halves[0], halves[1]
