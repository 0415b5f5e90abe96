"""Whole-frame shifts from the frames' half spectra: coarse cross-correlation, then Newton refinement.

Everything works on a low-frequency band cropped from spectra computed once (the B-factor envelope
leaves little signal above it), and on all frames at once:

1. coarse: each frame is cross-correlated with the aligned sum of the other frames on the band's
   grid (one small inverse FFT per frame), the peak located by a parabola through its neighbours;
2. refinement: the same cross-correlation is an analytic function of the residual shift, so its
   gradient and Hessian at zero are sums over the band; a Newton step moves every frame to its
   peak, and a few rounds re-form the reference from the realigned frames (the iterative scheme of
   MotionCor2 and Unblur, with the peak found in Fourier space rather than on a pixel grid).

The cross-correlation leaves out the ``ky = 0`` row and ``kx = 0`` column, where the frames' edges
and the fixed pattern of the detector put a peak at zero shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tiltstream.processors.motioncorr.fourier import apply_phase_ramps, crop_spectra, spectrum_frequencies
from tiltstream.processors.motioncorr.trajectory_prior import smooth_trajectory

__all__ = ["ShiftEstimate", "band_shape", "estimate_global_shifts", "estimate_shifts", "frame_noise_power"]


def band_shape(
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    b_factor_angstroms2: float,
    envelope_floor: float = 1e-3,
) -> tuple[int, int]:
    """Even crop ``(h', w')`` holding the frequencies where the squared B-factor envelope exceeds
    ``envelope_floor``."""
    f_max = min(0.5, pixel_size_angstroms * math.sqrt(2 * math.log(1 / envelope_floor) / b_factor_angstroms2))
    return tuple(min(n, max(32, 2 * math.ceil(f_max * n))) for n in shape)  # type: ignore[return-value]


def _weight(ky: torch.Tensor, kx: torch.Tensor, pixel: float, b_factor: float) -> torch.Tensor:
    k2 = (ky[:, None] ** 2 + kx[None, :] ** 2) / pixel**2  # (rows, columns) 1/angstrom**2
    weight = torch.exp(-b_factor * k2 / 2)  # the envelope on both spectra of a product
    weight[0, :] = 0.0
    weight[:, 0] = 0.0
    return weight


def _against_others(
    band: torch.Tensor,  # (..., t, rows, columns)
    power: torch.Tensor,  # (..., t, rows, columns) |band|**2
    ky: torch.Tensor,
    kx: torch.Tensor,
    shifts: torch.Tensor,  # (..., t, 2)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-spectra ``conj(sum of the other aligned frames) * aligned frame`` (..., t, rows, columns),
    and ``|total|**2`` (..., 1, rows, columns) of the aligned sum.

    ``conj(total - A_i) A_i = conj(total) A_i - |A_i|**2``, and ``|A_i|`` does not change with the shift.
    """
    aligned = apply_phase_ramps(band.clone(), ky, kx, shifts)
    total = aligned.sum(-3, keepdim=True)
    cross = aligned.mul_(total.conj_physical())
    torch.view_as_real(cross)[..., 0].sub_(power)
    return cross, torch.view_as_real(total).square().sum(-1)


def _parabola(minus: torch.Tensor, centre: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
    denominator = minus - 2 * centre + plus
    safe = torch.where(denominator < -1e-12, denominator, -torch.ones_like(denominator))
    return torch.where(denominator < -1e-12, (minus - plus) / (2 * safe), 0.0).clamp(-1.0, 1.0)


def _coarse_step(cross: torch.Tensor, grid: tuple[int, int], shape: tuple[int, int]) -> torch.Tensor:
    """Residual shifts (..., t, 2) yx in pixels from the peak of each frame's band-limited correlation."""
    lead = cross.shape[:-2]
    xc = torch.fft.irfft2(cross, s=grid).reshape(-1, *grid)  # (n, h', w') on a grid of h/h' x w/w' pixels
    t, rows, columns = xc.shape
    flat = xc.reshape(t, -1).argmax(-1)
    py, px = flat // columns, flat % columns
    frame = torch.arange(t, device=xc.device)
    centre = xc[frame, py, px]
    dy = _parabola(xc[frame, (py - 1) % rows, px], centre, xc[frame, (py + 1) % rows, px])
    dx = _parabola(xc[frame, py, (px - 1) % columns], centre, xc[frame, py, (px + 1) % columns])
    peak_y = (py + rows // 2) % rows - rows // 2 + dy  # signed, in grid cells
    peak_x = (px + columns // 2) % columns - columns // 2 + dx
    peaks = torch.stack([peak_y * shape[0] / rows, peak_x * shape[1] / columns], dim=1)
    return peaks.reshape(*lead, 2)


def _moments(kx: torch.Tensor, multiplicity: torch.Tensor) -> torch.Tensor:
    """``(2 columns, 5)``: contracts a real view of cross-spectra along ``kx`` to the row sums
    ``Re, Im, Re kx, Re kx**2, Im kx`` (each column counted with its mirror)."""
    moments = torch.zeros(len(kx), 2, 5, device=kx.device)
    moments[:, 0, 0] = multiplicity
    moments[:, 1, 1] = multiplicity
    moments[:, 0, 2] = multiplicity * kx
    moments[:, 0, 3] = multiplicity * kx**2
    moments[:, 1, 4] = multiplicity * kx
    return moments.reshape(2 * len(kx), 5)


def _newton_step(cross: torch.Tensor, ky: torch.Tensor, moments: torch.Tensor, limit: float) -> torch.Tensor:
    """Residual shifts (..., t, 2) yx: one Newton step to the maximum of ``Re sum cross exp(2 pi i k.u)``."""
    *lead, rows, columns = cross.shape
    rowsums = torch.view_as_real(cross).reshape(*lead, rows, 2 * columns) @ moments  # (..., t, rows, 5)
    two_pi = 2 * torch.pi
    gy = -two_pi * (rowsums[..., 1] @ ky)  # (t,) gradient
    gx = -two_pi * rowsums[..., 4].sum(-1)
    hyy = -(two_pi**2) * (rowsums[..., 0] @ ky**2)  # Hessian
    hxx = -(two_pi**2) * rowsums[..., 3].sum(-1)
    hxy = -(two_pi**2) * (rowsums[..., 2] @ ky)
    det = hyy * hxx - hxy**2
    peak = (hyy < 0) & (det > 0)  # a maximum: the Newton step is safe
    safe = torch.where(peak, det, torch.ones_like(det))
    uy = -(hxx * gy - hxy * gx) / safe
    ux = -(hyy * gx - hxy * gy) / safe
    step = torch.stack([uy, ux], dim=-1) * peak[..., None]
    return step.clamp(-limit, limit)


def frame_noise_power(spectra: torch.Tensor) -> torch.Tensor:
    """Shot-noise power per Fourier coefficient of each frame (..., t): the mean power above 0.4 cycles
    per pixel, where the specimen's signal is gone and counting noise is white."""
    start = int(0.8 * (spectra.shape[-1] - 1))
    return torch.view_as_real(spectra[..., start:]).square().sum(-1).mean(dim=(-2, -1))


def _shift_variance(
    cross: torch.Tensor,  # (..., t, rows, columns)
    total_power: torch.Tensor,  # (..., 1, rows, columns)
    power: torch.Tensor,  # (..., t, rows, columns)
    noise: torch.Tensor,  # (..., t, rows, columns) noise power per coefficient (in the weighted band)
    ky: torch.Tensor,
    kx: torch.Tensor,
    multiplicity: torch.Tensor,
) -> torch.Tensor:
    """Variance (..., t, 2) yx in px² of the Newton estimate from each frame's own shot noise.

    The gradient's noise is ``Im(conj(R) n)`` summed with ``k``: variance ``sum k² |R|² noise / 2``
    (``R`` the reference, mirrored columns counted twice); divided by the curvature squared.
    """
    reference = (total_power - 2 * cross.real - power).clamp_min(0) * noise  # (..., t, rows, columns) |R|² n
    two_pi = 2 * torch.pi
    by_row = reference @ multiplicity**2  # (..., t, rows)
    gy = two_pi**2 / 2 * (by_row @ ky**2)
    gx = two_pi**2 / 2 * (reference @ (multiplicity**2 * kx**2)).sum(-1)
    re = cross.real
    hyy = two_pi**2 * ((re @ multiplicity) @ ky**2)
    hxx = two_pi**2 * (re @ (multiplicity * kx**2)).sum(-1)
    return torch.stack([gy / hyy.square().clamp_min(1e-30), gx / hxx.square().clamp_min(1e-30)], dim=-1)


def estimate_shifts(
    spectra: torch.Tensor,  # (..., t, h, w//2+1) half spectra of the frames
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    b_factor_angstroms2: float = 500.0,
    coarse_rounds: int = 6,
    refine_rounds: int = 10,
    tolerance_pixels: float = 0.01,
    curvature_pixels: float = 0.0,
    noise_power: torch.Tensor | None = None,  # (..., t)
) -> ShiftEstimate:
    """``(..., t, 2)`` yx displacements in pixels, mean zero over the frames (frame ``i`` shows the
    specimen moved by them), and their variance. Leading dimensions (patches of one movie) are
    estimated at once.

    Parameters
    ----------
    spectra
        ``rfft2`` of the frames (any mean: the zero frequency is not used).
    shape
        ``(h, w)`` of the frames.
    pixel_size_angstroms
        For the B-factor envelope that suppresses shot noise.
    b_factor_angstroms2
        Strength of that envelope (``exp(-B k**2 / 4)`` on each spectrum).
    coarse_rounds, refine_rounds
        At most this many rounds of the grid search (until no frame moves by a grid cell or more)
        and of the Newton refinement (until no frame moves by ``tolerance_pixels`` or more).
    tolerance_pixels
        Convergence of the refinement.
    curvature_pixels
        The smooth-trajectory prior (:func:`smooth_trajectory`): the expected size of the
        trajectory's second difference (px per frame²), weighed against each frame's shot-noise
        variance; 0 leaves the prior out.
    noise_power
        Shot-noise power per Fourier coefficient of each frame's spectrum; by default estimated from
        the spectra's high frequencies (:func:`frame_noise_power`), which needs spectra that reach them.
    """
    grid = band_shape(shape, pixel_size_angstroms, b_factor_angstroms2)
    band = crop_spectra(spectra, grid)  # (..., t, h', w'//2+1)
    ky, kx = spectrum_frequencies(shape, (band.shape[-2], band.shape[-1]), spectra.device)
    weight = _weight(ky, kx, pixel_size_angstroms, b_factor_angstroms2)
    band = band * weight.sqrt()
    power = torch.view_as_real(band).square().sum(-1)  # (..., t, rows, columns)
    cell = max(shape[0] / grid[0], shape[1] / grid[1])  # pixels per grid cell
    shifts = _coarse_search(band, power, ky, kx, grid, shape, coarse_rounds, cell)
    if noise_power is None:
        noise_power = frame_noise_power(spectra)
    multiplicity = torch.full_like(kx, 2.0)
    multiplicity[0] = 1.0
    if grid[1] == shape[1] and shape[1] % 2 == 0:
        multiplicity[-1] = 1.0  # the Nyquist column has no mirror
    refine = _Refinement(band, power, ky, kx, multiplicity, noise_power[..., None, None] * weight, cell)
    return refine.run(shifts, refine_rounds, tolerance_pixels, curvature_pixels)


def estimate_global_shifts(
    spectra: torch.Tensor,  # (..., t, h, w//2+1) half spectra of the frames
    shape: tuple[int, int],
    pixel_size_angstroms: float,
    b_factor_angstroms2: float = 500.0,
    *,
    curvature_pixels: float = 0.0,
) -> torch.Tensor:
    """The displacements ``(..., t, 2)`` of :func:`estimate_shifts` with its defaults."""
    return estimate_shifts(
        spectra, shape, pixel_size_angstroms, b_factor_angstroms2, curvature_pixels=curvature_pixels
    ).shifts_pixels


def _coarse_search(
    band: torch.Tensor,  # (..., t, rows, columns)
    power: torch.Tensor,
    ky: torch.Tensor,
    kx: torch.Tensor,
    grid: tuple[int, int],
    shape: tuple[int, int],
    rounds: int,
    cell: float,
) -> torch.Tensor:
    """Shifts (..., t, 2) to the nearest grid cell or so: rounds of the correlation peak search."""
    shifts = torch.zeros(*band.shape[:-2], 2, device=band.device)
    for _ in range(rounds):
        step = _coarse_step(_against_others(band, power, ky, kx, shifts)[0], grid, shape)
        shifts = shifts + step - (shifts + step).mean(-2, keepdim=True)
        if float(step.abs().max()) < cell:
            break
    return shifts


@dataclass(frozen=True)
class ShiftEstimate:
    """Displacements and the variance of each from its frame's shot noise (px²)."""

    shifts_pixels: torch.Tensor  # (..., t, 2) yx
    variance_pixels2: torch.Tensor  # (..., t, 2) yx


@dataclass(frozen=True)
class _Refinement:
    """The Newton rounds on one band: what stays fixed while the shifts move."""

    band: torch.Tensor  # (..., t, rows, columns)
    power: torch.Tensor  # (..., t, rows, columns)
    ky: torch.Tensor
    kx: torch.Tensor
    multiplicity: torch.Tensor  # (columns,)
    noise: torch.Tensor  # (..., t, rows, columns) in the weighted band
    cell: float

    def run(self, shifts: torch.Tensor, rounds: int, tolerance: float, curvature: float) -> ShiftEstimate:
        """Shifts (..., t, 2) after at most ``rounds`` steps, each re-forming the references."""
        moments = _moments(self.kx, self.multiplicity)
        variance = torch.zeros_like(shifts)
        for round_ in range(rounds):
            cross, total_power = _against_others(self.band, self.power, self.ky, self.kx, shifts)
            moved = shifts + _newton_step(cross, self.ky, moments, self.cell)
            if round_ < 2:  # the references change little from here on: so does the variance
                variance = _shift_variance(
                    cross, total_power, self.power, self.noise, self.ky, self.kx, self.multiplicity
                )
            if curvature > 0:
                moved = smooth_trajectory(moved, variance / curvature**2)
            moved = moved - moved.mean(-2, keepdim=True)
            change, shifts = float((moved - shifts).abs().max()), moved
            if change < tolerance:
                break
        return ShiftEstimate(shifts, variance)
