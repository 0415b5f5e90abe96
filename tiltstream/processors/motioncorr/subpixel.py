"""Sub-pixel refinement of whole-frame shifts: each frame against the sum of all the others.

The library's whole-frame estimate is exact to one pixel only. Here, for a few rounds, every frame is
cross-correlated with the aligned sum of the other frames (so its own noise is not in the
reference), the peak is located to sub-pixel precision by a parabola through its neighbours, and the
shift updated — the iterative scheme MotionCor2 and Unblur use for their global alignment.
"""

from __future__ import annotations

import torch

__all__ = ["refine_frame_shifts"]


def _parabola_offset(minus: torch.Tensor, centre: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
    denominator = minus - 2 * centre + plus
    safe = torch.where(denominator.abs() > 1e-12, denominator, torch.ones_like(denominator))
    offset = torch.where(denominator.abs() > 1e-12, (minus - plus) / (2 * safe), torch.zeros_like(minus))
    return offset.clamp(-1.0, 1.0)


def refine_frame_shifts(
    movie: torch.Tensor,  # (t, h, w)
    displacement_pixels: torch.Tensor,  # (t, 2) yx initial estimate
    pixel_size_angstroms: float,
    b_factor_angstroms2: float = 500.0,
    rounds: int = 3,
    search_pixels: int = 2,
) -> torch.Tensor:
    """Refined ``(t, 2)`` yx displacements in pixels (frame ``i`` shows the specimen moved by them).

    Parameters
    ----------
    movie
        The frames.
    displacement_pixels
        Starting estimate, e.g. whole-pixel cross-correlation.
    pixel_size_angstroms
        For the B-factor low-pass that suppresses shot noise.
    b_factor_angstroms2
        Strength of that low-pass (``exp(-B k**2 / 4)``).
    rounds
        Refinement rounds.
    search_pixels
        Each round may move a frame by at most this many pixels.
    """
    t, h, w = movie.shape
    device = movie.device
    ky = torch.fft.fftfreq(h, device=device)[:, None]  # cycles per pixel
    kx = torch.fft.rfftfreq(w, device=device)[None, :]
    k2 = (ky**2 + kx**2) / pixel_size_angstroms**2
    weight = torch.exp(-b_factor_angstroms2 * k2 / 4)
    weight[0, 0] = 0.0  # no mean
    spectra = torch.fft.rfft2(movie - movie.mean(dim=(-2, -1), keepdim=True)) * weight  # (t, h, w//2+1)
    shifts = displacement_pixels.clone().to(device=device, dtype=torch.float32)
    offsets = torch.arange(-search_pixels, search_pixels + 1, device=device)
    for _ in range(rounds):
        phase = torch.exp(
            2j * torch.pi * (ky[None] * shifts[:, 0, None, None] + kx[None] * shifts[:, 1, None, None])
        )
        aligned = spectra * phase  # each frame moved back by its displacement
        total = aligned.sum(0)
        for i in range(t):
            reference = total - aligned[i]
            xc = torch.fft.irfft2(torch.conj(reference) * aligned[i], s=(h, w))  # peak at residual shift
            window = xc[offsets[:, None] % h, offsets[None, :] % w]  # (2s+1, 2s+1) around zero
            flat = int(torch.argmax(window))
            py, px = divmod(flat, window.shape[1])
            py = min(max(py, 1), window.shape[0] - 2)
            px = min(max(px, 1), window.shape[1] - 2)
            dy = offsets[py] + _parabola_offset(window[py - 1, px], window[py, px], window[py + 1, px])
            dx = offsets[px] + _parabola_offset(window[py, px - 1], window[py, px], window[py, px + 1])
            shifts[i, 0] += dy
            shifts[i, 1] += dx
        shifts -= shifts.mean(0, keepdim=True)
    return shifts
