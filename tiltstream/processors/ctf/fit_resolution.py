"""How far out the fitted CTF matches the power spectrum, and the diagnostic image (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["diagnostic_image", "fit_resolution_angstroms", "full_spectrum"]


def full_spectrum(half: np.ndarray) -> np.ndarray:
    """The full ``(n, n)`` centred spectrum of a real image from its rfft half ``(n, n//2+1)``."""
    n = half.shape[0]
    full = np.empty((n, n), dtype=half.dtype)
    full[:, : half.shape[1]] = half
    columns = np.arange(half.shape[1], n)
    full[:, columns] = half[(-np.arange(n)) % n][:, n - columns]
    return np.fft.fftshift(full)


def _radius(n: int) -> np.ndarray:
    ky = np.fft.fftshift(np.fft.fftfreq(n))[:, None]
    kx = np.fft.fftshift(np.fft.fftfreq(n))[None, :]
    radius: np.ndarray = np.sqrt(kx**2 + ky**2)  # (n, n) cycles per pixel
    return radius


def _flatten(image: np.ndarray, rings: np.ndarray, bins: int) -> np.ndarray:
    """Subtract each ring's mean and divide by its std: removes the smooth background."""
    out = np.zeros_like(image)
    for b in range(bins):
        mask = rings == b
        if mask.sum() > 1:
            values = image[mask]
            out[mask] = (values - values.mean()) / (values.std() + 1e-12)
    return out


def _box3(image: np.ndarray) -> np.ndarray:
    """3 x 3 box average: tames the speckle of a single power spectrum, keeps the rings."""
    total = np.zeros_like(image)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            total += np.roll(image, (dy, dx), axis=(0, 1))
    return total / 9.0


def fit_resolution_angstroms(
    spectrum: np.ndarray,  # (n, n) centred power spectrum
    model: np.ndarray,  # (n, n) centred CTF**2 of the fit
    pixel_size_angstroms: float,
    min_resolution_angstroms: float,
    threshold: float = 0.1,
    bins: int = 48,
    window: int = 5,
) -> float:
    """The resolution at which the spectrum stops following the model.

    Rings are background-flattened, then correlated with the model over sliding windows of
    ``window`` rings, outwards from ``min_resolution_angstroms``; the answer is the finest resolution
    reached before the correlation first drops under ``threshold`` (CTFFIND reports a similar
    figure). Nyquist (``2 * pixel``) at best. The threshold is low because the correlation is per
    pixel of a single, speckled spectrum: on synthetic images it measured 0.1-0.35 where rings are
    present and under 0.03 in pure noise.
    """
    n = spectrum.shape[0]
    radius = _radius(n)
    rings = np.minimum((radius / 0.5 * bins).astype(int), bins)  # bin ``bins`` = corners
    log_spectrum = np.log(np.maximum(_box3(spectrum), 1e-30))
    flat_spectrum = _flatten(log_spectrum, rings, bins)
    flat_model = _flatten(model, rings, bins)
    start = int(np.ceil(pixel_size_angstroms / min_resolution_angstroms * 2 * bins))
    reached = start
    for first in range(start, bins - window + 1):
        mask = (rings >= first) & (rings < first + window)
        a, b = flat_spectrum[mask], flat_model[mask]
        if a.std() < 1e-12 or b.std() < 1e-12 or float(np.corrcoef(a, b)[0, 1]) < threshold:
            break
        reached = first + window
    frequency = max(reached, 1) / bins * 0.5 / pixel_size_angstroms  # cycles per angstrom
    return float(max(1.0 / frequency, 2 * pixel_size_angstroms))


def diagnostic_image(spectrum: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Left half: the log power spectrum (contrast-stretched); right half: the fitted CTF**2."""
    n = spectrum.shape[0]
    rings = np.minimum((_radius(n) / 0.5 * 48).astype(int), 48)
    flat = _flatten(np.log(np.maximum(spectrum, 1e-30)), rings, 48)
    flat = np.clip(flat, -2.5, 2.5)
    image: np.ndarray = (flat - flat.min()) / (np.ptp(flat) + 1e-12)
    image[:, n // 2 :] = model[:, n // 2 :] / (model.max() + 1e-12)
    return image
