"""Sums of the even and the odd frames of an aligned movie: the two halves of its micrograph.

The frames ``0, 2, 4, ...`` (numbered from 0, in acquisition order) make the even sum and ``1, 3, 5,
...`` the odd one; each half has its own shot noise and the same specimen, so the two halves are the
independent pair a Noise2Noise denoiser trains on and the FSC between their tomograms measures.
Both are weighted and normalised exactly like the full sum (the same per-frame dose filters and the
same per-frequency renormalisation), so even + odd is the full sum: each half holds about half the
dose, not a rescaled copy of the whole.

:func:`frame_half_sums` does it for a whole stack of aligned (and weighted) spectra (the global path);
a path that aligns frames in chunks adds each chunk's :func:`half_spectra` and finishes with
:func:`halves_from_spectra`. The frames are weighted before they are split, so the dose-weighted
micrograph is the two halves' sum and costs nothing more.
"""

from __future__ import annotations

import torch

__all__ = ["frame_half_sums", "half_spectra", "halves_from_spectra"]


def half_spectra(
    aligned: torch.Tensor,  # (c, h, w//2+1) half spectra of aligned frames first_frame, first_frame + 1, ...
    first_frame: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sums of the even and of the odd frames' spectra (already weighted, if at all), ``(h, w//2+1)``
    each; ``aligned`` is read, not changed.

    Raises
    ------
    ValueError
        A negative ``first_frame``.
    """
    if first_frame < 0:
        raise ValueError(f"first frame {first_frame}")
    parity = first_frame % 2  # the index in ``aligned`` of its first even frame
    return aligned[parity::2].sum(0), aligned[1 - parity :: 2].sum(0)


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
    norm: torch.Tensor | None = None,  # (h, w//2+1)
) -> tuple[torch.Tensor, torch.Tensor]:
    """The even- and odd-frame sums ``(even (h, w), odd (h, w))`` of a whole movie's ``aligned`` spectra.

    Parameters
    ----------
    aligned
        Half spectra (``rfft2``) of the frames, aligned and (for dose-weighted halves) already multiplied
        by each frame's dose filter ``q``; read, not changed.
    shape
        ``(h, w)`` of the frames (the inverse transform's size).
    norm
        The full sum's per-frequency renormalisation
        (:func:`~tiltstream.processors.motioncorr.dose.dose_filters`); ``None`` for plain sums.

    Raises
    ------
    ValueError
        Fewer than two frames (no odd frame).
    """
    frames = aligned.shape[0]
    if frames < 2:
        raise ValueError(f"{frames} frame(s): the even and odd halves need at least two")
    even, odd = half_spectra(aligned)
    return halves_from_spectra(even, odd, shape, norm)
