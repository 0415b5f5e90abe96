"""Defocus from rotational (or sector) profiles of a log power spectrum, all candidates at once.

For each candidate defocus the profile is fitted by linear least squares as a smooth background
plus a smooth amplitude times ``CTF² - ½``, both low-order polynomials of the radius; the candidate
that leaves the smallest residual wins. Background and envelope need no separate estimate, and the
whole search is one batched ``lstsq``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tiltstream.processors.ctf.optics import Optics, ctf_squared
from tiltstream.processors.ctf.spectrum_geometry import SECTORS, SpectrumGeometry

__all__ = ["Profiles", "background_and_envelope", "profile_scores", "radial_profiles"]

BACKGROUND_DEGREE = 4
ENVELOPE_DEGREE = 2


@dataclass(frozen=True)
class Profiles:
    """Mean log power per radial bin of each sector; bins without pixels have ``counts`` 0."""

    values: torch.Tensor  # (s, b)
    frequency_squared: torch.Tensor  # (s, b) 1/Å², the bin's mean
    counts: torch.Tensor  # (s, b)


def radial_profiles(
    log_power: torch.Tensor,  # (n,) at the geometry's band pixels, float64
    geometry: SpectrumGeometry,
    sectored: bool = False,
) -> Profiles:
    """Profiles in half-pixel radial bins: the rotational one, or one per azimuth sector."""
    sectors = SECTORS if sectored else 1
    slot = geometry.sector * geometry.bins + geometry.half_bin if sectored else geometry.half_bin
    size = sectors * geometry.bins
    counts = torch.bincount(slot, minlength=size).to(log_power.dtype)
    sums = torch.bincount(slot, weights=log_power, minlength=size)
    k2 = torch.bincount(slot, weights=geometry.frequency_squared, minlength=size)
    safe = counts.clamp(min=1)
    shape = (sectors, geometry.bins)
    return Profiles((sums / safe).reshape(shape), (k2 / safe).reshape(shape), counts.reshape(shape))


def _powers(x: torch.Tensor, degree: int) -> torch.Tensor:  # (..., b) -> (..., b, degree + 1)
    return torch.stack([x**j for j in range(degree + 1)], dim=-1)


@dataclass(frozen=True)
class _Fit:
    gain: torch.Tensor  # (s, c) weighted sum of squares the rings explain beyond the background alone
    solution: torch.Tensor  # (s, c, p) background then envelope coefficients
    amplitude: torch.Tensor  # (s, c) the fitted envelope's mean over the candidate's bins
    low: torch.Tensor  # (s, 1, 1) the smallest used frequency, 1/Å
    high: torch.Tensor  # (s, 1, 1) the largest used frequency, 1/Å

    def scaled(self, k2: torch.Tensor) -> torch.Tensor:  # (s, 1, m) -> (s, 1, m) in [-1, 1]
        span = (self.high - self.low).clamp(min=1e-12)
        return (2 * (k2.sqrt() - self.low) / span - 1).clamp(-1, 1)


def _solve(design: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares per batch: the solution ``(..., p)`` and the residual sum of squares ``(...)``.

    By the normal equations (a few columns, many batches: far cheaper than a QR per batch), with a
    relative ridge of 1e-10 so that a candidate whose rings vanish from its band stays solvable.
    """
    gram = design.transpose(-1, -2) @ design  # (..., p, p)
    moment = (design.transpose(-1, -2) @ target[..., None])[..., 0]  # (..., p)
    ridge = 1e-10 * gram.diagonal(dim1=-2, dim2=-1).sum(-1).clamp(min=1e-30)  # (...,)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    solution = torch.linalg.solve(gram + ridge[..., None, None] * eye, moment)  # (..., p)
    residual = (target**2).sum(-1) - (solution * moment).sum(-1)
    return solution, residual


def _fit(
    profiles: Profiles,
    candidates_angstroms: torch.Tensor,  # (s, c)
    optics: Optics,
    max_frequency_squared: torch.Tensor,  # (s, c) each candidate's band
) -> _Fit:
    k2 = profiles.frequency_squared[:, None, :]  # (s, 1, b)
    used = (profiles.counts[:, None, :] > 0) & (k2 <= max_frequency_squared[..., None])  # (s, c, b)
    weight = torch.where(used, profiles.counts[:, None, :].sqrt(), torch.zeros_like(k2))  # (s, c, b)
    some = used.any(1, keepdim=True)  # (s, 1, b)
    low = torch.where(some, k2, torch.full_like(k2, float("inf"))).amin(-1, keepdim=True).sqrt()
    high = torch.where(some, k2, torch.zeros_like(k2)).amax(-1, keepdim=True).sqrt()
    fit = _Fit(torch.empty(0), torch.empty(0), torch.empty(0), low, high)
    x = fit.scaled(k2)  # (s, 1, b)
    model = _model(candidates_angstroms[..., None], k2, optics)  # (s, c, b)
    background = _powers(x, BACKGROUND_DEGREE).expand(-1, model.shape[1], -1, -1) * weight[..., None]
    envelope = _powers(x, ENVELOPE_DEGREE) * (model * weight)[..., None]
    target = profiles.values[:, None, :] * weight  # (s, c, b)
    solution, residual = _solve(torch.cat([background, envelope], dim=-1), target)
    _, background_only = _solve(background, target)
    amplitude = (_powers(x, ENVELOPE_DEGREE) @ solution[..., BACKGROUND_DEGREE + 1 :, None])[..., 0]
    mean_amplitude = (amplitude * used).sum(-1)  # (s, c)
    return _Fit(background_only - residual, solution, mean_amplitude, low, high)


def _model(defocus_angstroms: torch.Tensor, k2: torch.Tensor, optics: Optics) -> torch.Tensor:
    return ctf_squared(defocus_angstroms, k2, optics) - 0.5


def profile_scores(
    profiles: Profiles,
    candidates_angstroms: torch.Tensor,  # (s, c)
    optics: Optics,
    max_frequency_squared: torch.Tensor,  # (s, c) each candidate's band
) -> torch.Tensor:  # (s, c)
    """How much of each sector's profile the rings of each candidate defocus explain (higher: better).

    The score is the drop in the weighted residual when the ring term joins the background: each
    bin weighs by the square root of its pixel count, which makes every bin's noise alike, so
    candidates fitted over different bands (each only as far as its rings stay sampled) compare
    fairly. A candidate whose fitted envelope is negative on average (its rings fitted upside down,
    half a period off) gets ``-inf``.
    """
    fit = _fit(profiles, candidates_angstroms, optics, max_frequency_squared)
    return torch.where(fit.amplitude > 0, fit.gain, torch.full_like(fit.gain, float("-inf")))


def background_and_envelope(
    profiles: Profiles,  # one sector: (1, b)
    defocus_angstroms: float,
    optics: Optics,
    max_frequency_squared: float,
    frequency_squared: torch.Tensor,  # (n,) where to evaluate them
) -> tuple[torch.Tensor, torch.Tensor]:  # (n,), (n,)
    """The fitted smooth background and ring amplitude of the rotational profile, at ``frequency_squared``."""
    values = profiles.values
    candidate = torch.tensor([[defocus_angstroms]], dtype=values.dtype, device=values.device)
    limit = torch.full_like(candidate, max_frequency_squared)
    fit = _fit(profiles, candidate, optics, limit)
    x = fit.scaled(frequency_squared[None, None])[0, 0]  # (n,)
    coefficients = fit.solution[0, 0]  # (p,)
    background = _powers(x, BACKGROUND_DEGREE) @ coefficients[: BACKGROUND_DEGREE + 1]
    envelope = _powers(x, ENVELOPE_DEGREE) @ coefficients[BACKGROUND_DEGREE + 1 :]
    return background, envelope
