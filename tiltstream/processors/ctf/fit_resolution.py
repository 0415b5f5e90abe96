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
    """Subtract each ring's mean and divide by its std: removes the smooth background.

    Rings are ``0 .. bins - 1`` (``bins``, the corners, and rings of one pixel become 0).
    """
    flat_rings = rings.ravel()
    values = image.ravel().astype(np.float64)
    counts = np.bincount(flat_rings, minlength=bins + 1)
    mean = np.bincount(flat_rings, values, minlength=bins + 1) / np.maximum(counts, 1)
    square = np.bincount(flat_rings, values**2, minlength=bins + 1) / np.maximum(counts, 1)
    std = np.sqrt(np.maximum(square - mean**2, 0.0))
    keep = (counts > 1) & (np.arange(bins + 1) < bins)
    out = np.where(keep[flat_rings], (values - mean[flat_rings]) / (std[flat_rings] + 1e-12), 0.0)
    return out.reshape(image.shape).astype(image.dtype)


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
    flat_spectrum = _flatten(log_spectrum, rings, bins).ravel().astype(np.float64)
    flat_model = _flatten(model, rings, bins).ravel().astype(np.float64)
    start = int(np.ceil(pixel_size_angstroms / min_resolution_angstroms * 2 * bins))
    correlations = _window_correlations(flat_spectrum, flat_model, rings.ravel(), bins, window)
    reached = start
    for first in range(start, bins - window + 1):
        if not correlations[first] >= threshold:  # NaN (a flat window) stops it too
            break
        reached = first + window
    frequency = max(reached, 1) / bins * 0.5 / pixel_size_angstroms  # cycles per angstrom
    return float(max(1.0 / frequency, 2 * pixel_size_angstroms))


def _window_correlations(
    a: np.ndarray, b: np.ndarray, rings: np.ndarray, bins: int, window: int
) -> np.ndarray:  # (bins - window + 1,)
    """Pearson correlation of ``a`` and ``b`` over the pixels of rings ``[i, i + window)``, each ``i``."""

    def windowed(weights: np.ndarray | None) -> np.ndarray:
        per_ring = np.bincount(rings, weights, minlength=bins + 1)[:bins].astype(np.float64)
        total = np.concatenate([[0.0], np.cumsum(per_ring)])
        windows: np.ndarray = total[window:] - total[:-window]
        return windows

    count = windowed(None)
    mean_a, mean_b = windowed(a) / np.maximum(count, 1), windowed(b) / np.maximum(count, 1)
    covariance = windowed(a * b) / np.maximum(count, 1) - mean_a * mean_b
    var_a = windowed(a * a) / np.maximum(count, 1) - mean_a**2
    var_b = windowed(b * b) / np.maximum(count, 1) - mean_b**2
    flat = (var_a < 1e-24) | (var_b < 1e-24)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation: np.ndarray = np.where(flat, np.nan, covariance / np.sqrt(var_a * var_b))
    return correlation


def diagnostic_image(spectrum: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Left half: the log power spectrum (contrast-stretched); right half: the fitted CTF**2."""
    n = spectrum.shape[0]
    rings = np.minimum((_radius(n) / 0.5 * 48).astype(int), 48)
    flat = _flatten(np.log(np.maximum(spectrum, 1e-30)), rings, 48)
    flat = np.clip(flat, -2.5, 2.5)
    image: np.ndarray = (flat - flat.min()) / (np.ptp(flat) + 1e-12)
    image[:, n // 2 :] = model[:, n // 2 :] / (model.max() + 1e-12)
    return image
