"""Sums of the even and the odd frames of an aligned movie: the two halves of its micrograph.

The frames ``0, 2, 4, ...`` (numbered from 0, in acquisition order) make the even sum and ``1, 3, 5,
...`` the odd one; each half has its own shot noise and the same specimen, so the two halves are the
independent pair a Noise2Noise denoiser trains on and the FSC between their tomograms measures.
Both are weighted and normalised exactly like the full sum (the same per-frame dose filters and the
same per-frequency renormalisation), so even + odd is the full sum: each half holds about half the
dose, not a rescaled copy of the whole.

:func:`frame_half_sums` does it for a whole stack of aligned spectra (the global path); a path that
aligns frames in chunks adds each chunk's :func:`half_spectra` and finishes with
:func:`halves_from_spectra`.
"""

from __future__ import annotations

import torch

__all__ = ["frame_half_sums", "half_spectra", "halves_from_spectra"]


def half_spectra(
    aligned: torch.Tensor,  # (c, h, w//2+1) half spectra of aligned frames first_frame, first_frame + 1, ...
    first_frame: int = 0,
    weights: torch.Tensor | None = None,  # (c, h, w//2+1) the same frames' dose filters q
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weighted) sums of the even and of the odd frames' spectra, ``(h, w//2+1)`` each.

    ``aligned`` is read, not changed; frames are added one at a time (no copy of half the stack).

    Raises
    ------
    ValueError
        Weights of another shape than the spectra, or a negative ``first_frame``.
    """
    if weights is not None and weights.shape != aligned.shape:
        raise ValueError(f"dose filters {tuple(weights.shape)} for spectra {tuple(aligned.shape)}")
    if first_frame < 0:
        raise ValueError(f"first frame {first_frame}")
    sums = (torch.zeros_like(aligned[0]), torch.zeros_like(aligned[0]))  # even, odd
    for index in range(len(aligned)):
        half = sums[(first_frame + index) % 2]
        half += aligned[index] if weights is None else aligned[index] * weights[index]
    return sums


def halves_from_spectra(
    even_spectrum: torch.Tensor,  # (h, w//2+1)
    odd_spectrum: torch.Tensor,  # (h, w//2+1)
    shape: tuple[int, int],
    norm: torch.Tensor | None = None,  # (h, w//2+1) the full sum's renormalisation
) -> tuple[torch.Tensor, torch.Tensor]:
    """The even and odd sums ``(h, w)`` from their spectra, renormalised like the full sum."""
    if norm is not None:
        even_spectrum, odd_spectrum = even_spectrum * norm, odd_spectrum * norm
    return torch.fft.irfft2(even_spectrum, s=shape), torch.fft.irfft2(odd_spectrum, s=shape)


def frame_half_sums(
    aligned: torch.Tensor,  # (t, h, w//2+1) half spectra of the aligned frames (not changed)
    shape: tuple[int, int],
    dose_filters: tuple[torch.Tensor, torch.Tensor] | None = None,  # (q (t, h, w//2+1), norm (h, w//2+1))
) -> tuple[torch.Tensor, torch.Tensor]:
    """The even- and odd-frame sums ``(even (h, w), odd (h, w))`` of a whole movie's ``aligned`` spectra.

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
    weights, norm = (None, None) if dose_filters is None else dose_filters
    even, odd = half_spectra(aligned, 0, weights)
    return halves_from_spectra(even, odd, shape, norm)
