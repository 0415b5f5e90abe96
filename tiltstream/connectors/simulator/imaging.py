"""Image formation: the CTF of a tilt, per-frame drift, dose split across frames, counting noise."""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft

from tiltstream.connectors.simulator.doming import Doming, warp_by_doming
from tiltstream.connectors.simulator.projection import wavelength_angstroms

__all__ = ["CtfParameters", "PoissonSampler", "ctf_2d", "frame_drift_pixels", "simulate_frames"]


@dataclass(frozen=True)
class CtfParameters:
    """The optics of one tilt; defocus in angstroms, positive for underfocus (CTFFIND's convention)."""

    defocus_u_angstroms: float
    defocus_v_angstroms: float
    astigmatism_angle_degrees: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float
    b_factor_angstroms2: float


def ctf_2d(
    shape: tuple[int, int], pixel_size_angstroms: float, ctf: CtfParameters
) -> npt.NDArray[np.float32]:
    """The contrast transfer function on the ``rfft2`` grid of an ``(h, w)`` image.

    ``I = 1 + 2 * ifft(CTF * fft(phase))`` for a weak phase object; the CTF is
    ``-(sqrt(1 - A^2) sin(chi) + A cos(chi)) * exp(-B k^2 / 4)`` with
    ``chi = pi lambda df k^2 - pi/2 Cs lambda^3 k^4`` and ``df`` varying with the azimuth (astigmatism).

    Returns
    -------
    numpy.ndarray
        ``(h, w // 2 + 1)`` float32.
    """
    h, w = shape
    ky = scipy.fft.fftfreq(h, d=pixel_size_angstroms).astype(np.float32)[:, None]  # (h, 1) 1/Å
    kx = scipy.fft.rfftfreq(w, d=pixel_size_angstroms).astype(np.float32)[None, :]  # (1, w//2+1)
    k2 = kx**2 + ky**2
    azimuth = np.arctan2(ky, kx)
    mean = (ctf.defocus_u_angstroms + ctf.defocus_v_angstroms) / 2
    half = (ctf.defocus_u_angstroms - ctf.defocus_v_angstroms) / 2
    defocus = mean + half * np.cos(2 * (azimuth - math.radians(ctf.astigmatism_angle_degrees)))
    lam = wavelength_angstroms(ctf.voltage_kv)
    cs = ctf.spherical_aberration_mm * 1e7
    chi = np.float32(math.pi * lam) * defocus * k2 - np.float32(math.pi / 2 * cs * lam**3) * k2**2
    a = ctf.amplitude_contrast
    out = -(np.float32(math.sqrt(1 - a * a)) * np.sin(chi) + np.float32(a) * np.cos(chi))
    out *= np.exp(-np.float32(ctf.b_factor_angstroms2 / 4) * k2)
    result: npt.NDArray[np.float32] = np.asarray(out, dtype=np.float32)
    return result


def frame_drift_pixels(
    rng: np.random.Generator, frames: int, drift_angstroms: float, pixel_size_angstroms: float
) -> npt.NDArray[np.float64]:
    """Cumulative drift of each frame in pixels, ``(t, 2)`` as (x, y), frame 0 at the origin.

    Fast at first (the stage settling after the tilt), then a slow random walk; the path length is
    about ``drift_angstroms`` (between half and one and a half times it).
    """
    if frames == 1 or drift_angstroms == 0:
        return np.zeros((frames, 2))
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    f = np.arange(frames - 1)
    steps = np.exp(-f / 3.0)[:, None] * direction + 0.35 * rng.normal(size=(frames - 1, 2))
    length = np.linalg.norm(steps, axis=1).sum()
    steps *= drift_angstroms * rng.uniform(0.5, 1.5) / max(length, 1e-9) / pixel_size_angstroms
    return np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


class PoissonSampler:
    """Counting noise for small means by table look-up (several times faster than ``rng.poisson``).

    Means are stochastically rounded onto ``levels`` values in ``[0, max_mean]``, which keeps the
    expected count exact; each level has an inverse CDF over 16-bit uniform numbers.
    """

    def __init__(self, max_mean: float, levels: int = 256) -> None:
        # quantise the range upwards (steps of 2^(1/4)) so that tables are shared between movies
        step = math.ceil(4 * math.log2(max(float(max_mean), 1e-3)))
        self.max_mean = 2.0 ** (step / 4)
        self.levels = levels
        self.table = _inverse_cdf_table(self.max_mean, levels)

    def sample(self, mean: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.uint8]:
        """Draw counts with the given (h, w) means; means above ``max_mean`` are clipped to it."""
        scaled = np.clip(mean, 0, self.max_mean) * np.float32((self.levels - 1) / self.max_mean)
        return self.sample_levels(scaled, rng)

    def sample_levels(
        self, scaled: npt.NDArray[np.float32], rng: np.random.Generator
    ) -> npt.NDArray[np.uint8]:
        """Like :meth:`sample` for means already in level units (``mean * (levels-1) / max_mean``,
        non-negative); ``scaled`` is overwritten."""
        bits = rng.integers(0, 1 << 32, size=scaled.shape, dtype=np.uint32)
        dither = (bits >> 16).astype(np.float32)
        dither *= np.float32(1 / 65536)
        scaled += dither
        np.minimum(scaled, np.float32(self.levels - 1), out=scaled)
        index = scaled.astype(np.uint32)
        index <<= 16
        bits &= 0xFFFF
        index |= bits
        counts: npt.NDArray[np.uint8] = self.table.ravel()[index]
        return counts


@functools.lru_cache(maxsize=16)
def _inverse_cdf_table(max_mean: float, levels: int) -> npt.NDArray[np.uint8]:
    """``(levels, 65536)`` counts: the Poisson inverse CDF of each level at 16-bit uniform numbers."""
    means = np.linspace(0.0, max_mean, levels)[:, None]  # (levels, 1)
    top = min(int(max_mean + 12 * math.sqrt(max_mean) + 12), 255)
    k = np.arange(top)[None, :]
    log_pmf = k * np.log(np.maximum(means, 1e-300)) - means - np.cumsum(np.log(np.maximum(k, 1)), axis=1)
    log_pmf[0, 1:] = -np.inf  # mean 0: always 0 counts
    cdf = np.cumsum(np.exp(log_pmf), axis=1)  # (levels, top)
    u = (np.arange(1 << 16) + 0.5) / (1 << 16)
    return np.stack([np.searchsorted(row, u, side="right") for row in cdf]).astype(np.uint8)


def simulate_frames(
    phase: npt.NDArray[np.float32],
    attenuation: npt.NDArray[np.float32],
    *,
    ctf: npt.NDArray[np.float32],
    counts_per_pixel_per_frame: float,
    drift_pixels: npt.NDArray[np.float64],
    margin_pixels: int,
    rng: np.random.Generator,
    doming: Doming | None = None,
) -> npt.NDArray[np.uint8]:
    """Counting-detector frames of a drifting specimen.

    Parameters
    ----------
    phase, attenuation
        ``(h + 2m, w + 2m)`` projections from :func:`~.projection.project_phantom` with a margin ``m``.
    ctf
        :func:`ctf_2d` on the padded grid.
    counts_per_pixel_per_frame
        Electrons per pixel per frame through vacuum (the dose split across frames).
    drift_pixels
        ``(t, 2)`` x, y shift of each frame's content, from :func:`frame_drift_pixels`.
    doming
        Local motion on top of the drift (:mod:`.doming`); the margin must hold the drift and it.

    Returns
    -------
    numpy.ndarray
        ``(t, h, w)`` counts as uint8.
    """
    m = margin_pixels
    ph, pw = phase.shape
    h, w = ph - 2 * m, pw - 2 * m
    spectrum = scipy.fft.rfft2(phase, workers=-1) * ctf  # (ph, pw//2+1)
    ky = scipy.fft.fftfreq(ph).astype(np.float32)[:, None]
    kx = scipy.fft.rfftfreq(pw).astype(np.float32)[None, :]
    gain = attenuation[m : m + h, m : m + w] * np.float32(counts_per_pixel_per_frame)  # (h, w)
    sampler = PoissonSampler(float(gain.max()) * 2.5)
    level_gain = gain * np.float32((sampler.levels - 1) / sampler.max_mean)  # (h, w) in level units
    frames = np.empty((len(drift_pixels), h, w), np.uint8)  # (t, h, w)
    seeds = rng.integers(0, 1 << 63, size=len(drift_pixels))  # one stream per frame: any thread order

    def frame(i: int) -> None:
        dx, dy = drift_pixels[i]
        shifted = spectrum * np.exp(np.complex64(-2j * math.pi * dy) * ky)
        shifted *= np.exp(np.complex64(-2j * math.pi * dx) * kx)
        padded = scipy.fft.irfft2(shifted, s=(ph, pw), workers=1)
        image = padded[m : m + h, m : m + w] if doming is None else warp_by_doming(padded, doming, i, m)
        scaled = np.maximum(np.float32(1) + np.float32(2) * image, np.float32(0))
        scaled *= level_gain
        frames[i] = sampler.sample_levels(scaled, np.random.default_rng(int(seeds[i])))

    workers = min(os.cpu_count() or 1, len(drift_pixels), 8)
    if workers > 1 and h * w >= 512 * 512:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(frame, range(len(drift_pixels))))
    else:
        for i in range(len(drift_pixels)):
            frame(i)
    return frames
