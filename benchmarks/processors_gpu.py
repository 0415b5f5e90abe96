"""Processing cost per movie against the FFT floor, on CUDA (or any device), for the processors' backends.

For each size it prints seconds per movie for motion correction (global only: the builtin Fourier
path and the library path it replaced, each with its drift error; and with 5 x 5 local patches)
and for CTF estimation, and the ratio of each to one forward + inverse real FFT pass over the same
data (all frames for motion correction, the micrograph for CTF): the compute floor of any
Fourier-based method. Run where a GPU is available::

    python benchmarks/processors_gpu.py --device cuda                      # 1024² x 20 and 4096² x 40
    python benchmarks/processors_gpu.py --device cpu --sizes 1024x20       # what processors_throughput runs

It imports only the backends (torch and teamtomo's packages, no Kafka client), so it runs on a bare
GPU machine with those packages.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tiltstream.processors.ctf.builtin import estimate_ctf_builtin
from tiltstream.processors.ctf.result import CtfParameters
from tiltstream.processors.motioncorr.builtin import correct_movie_builtin
from tiltstream.processors.motioncorr.library import correct_movie_library
from tiltstream.processors.motioncorr.result import MotionParameters

__all__ = ["measure_compute", "print_rows"]

PIXEL = 1.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_of(function: Callable[[], Any], device: torch.device, repeats: int) -> float:
    function()  # warm-up: kernels, plans, caches
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _movie(size: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random specimen drifting by a random walk, Poisson counts.

    Returns ``(movie (t, h, w) float32, drift (t, 2) xy pixels)``: frame ``i`` shows the specimen
    displaced by ``drift[i]``.
    """
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(size)[:, None].astype(np.float32)
    kx = np.fft.rfftfreq(size)[None, :].astype(np.float32)
    specimen = np.fft.rfft2(rng.standard_normal((size, size)).astype(np.float32))
    specimen *= np.exp(-(kx**2 + ky**2) / (2 * 0.05**2))
    drift = np.cumsum(rng.normal(0, 1.5, (frames, 2)), axis=0)
    movie = np.empty((frames, size, size), dtype=np.float32)
    for i, (dx, dy) in enumerate(drift):
        frame = np.fft.irfft2(specimen * np.exp(-2j * np.pi * (kx * dx + ky * dy)), s=(size, size))
        movie[i] = rng.poisson(2.0 * np.clip(1 + 0.2 * frame / frame.std(), 0.05, None))
    return movie, drift


def _drift_error_pixels(applied_xy_angstroms: np.ndarray, drift_xy_pixels: np.ndarray) -> float:
    """RMS distance (pixels) between the applied shifts and the negated true drift, both mean-centred."""
    a = applied_xy_angstroms / PIXEL
    a = a - a.mean(axis=0)
    b = -(drift_xy_pixels - drift_xy_pixels.mean(axis=0))
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean()))


def _fft_floor(data: torch.Tensor) -> None:
    torch.fft.irfft2(torch.fft.rfft2(data), s=data.shape[-2:])


def measure_compute(
    size: int, frames: int, device: torch.device, repeats: int = 2, patches: tuple[int, ...] = (1, 5)
) -> list[dict[str, Any]]:
    """Seconds per movie and their ratio to the FFT floor, for each backend configuration."""
    movie, drift = _movie(size, frames)
    on_device = torch.from_numpy(movie).to(device)
    floor_movie = _best_of(lambda: _fft_floor(on_device), device, repeats)
    rows: list[dict[str, Any]] = []
    runs = [(f"motioncorr {n}x{n}", n, correct_movie_builtin) for n in patches]
    if 1 in patches:
        runs.insert(1, ("motioncorr 1x1 lib", 1, correct_movie_library))
    for step, count, backend in runs:
        parameters = MotionParameters(PIXEL, 0.1, 0.0, 300.0, patches_x=count, patches_y=count)
        run = functools.partial(backend, movie, None, parameters, device)
        seconds = _best_of(run, device, repeats)
        rows.append(
            {
                "step": step,
                "shape": f"{frames}x{size}x{size}",
                "seconds": seconds,
                "floor_seconds": floor_movie,
                "ratio": seconds / floor_movie,
                "drift_pixels": _drift_error_pixels(run().shifts_angstroms, drift),
            }
        )
    micrograph = movie.sum(axis=0)
    on_device_2d = torch.from_numpy(micrograph).to(device)
    floor_ctf = _best_of(lambda: _fft_floor(on_device_2d), device, repeats)
    ctf_parameters = CtfParameters(PIXEL, 300.0, 2.7, 0.07, 512, 30.0, 5.0, 5000.0, 80000.0)
    seconds = _best_of(lambda: estimate_ctf_builtin(micrograph, ctf_parameters, device), device, repeats)
    rows.append(
        {
            "step": "ctf",
            "shape": f"{size}x{size}",
            "seconds": seconds,
            "floor_seconds": floor_ctf,
            "ratio": seconds / floor_ctf,
        }
    )
    return rows


def print_rows(rows: list[dict[str, Any]], device: str) -> None:
    """One line per measurement."""
    print(f"{'step':<20}{'data':>14}{'s/movie':>10}{'FFT floor s':>13}{'ratio':>9}{'drift px':>10}   device")
    for row in rows:
        drift = f"{row['drift_pixels']:>10.3f}" if "drift_pixels" in row else f"{'':>10}"
        print(
            f"{row['step']:<20}{row['shape']:>14}{row['seconds']:>10.3f}"
            f"{row['floor_seconds']:>13.4f}{row['ratio']:>9.1f}{drift}   {device}"
        )
    fourier = next((r for r in rows if r["step"] == "motioncorr 1x1"), None)
    library = next((r for r in rows if r["step"] == "motioncorr 1x1 lib"), None)
    if fourier is not None and library is not None:
        print(
            f"motioncorr 1x1 (global): Fourier path {fourier['ratio']:.1f}x the FFT floor, library path "
            f"{library['ratio']:.1f}x ({library['seconds'] / fourier['seconds']:.1f}x faster); drift error "
            f"{fourier['drift_pixels']:.3f} px (library {library['drift_pixels']:.3f} px); "
            f"target <= 3x floor: {'met' if fourier['ratio'] <= 3 else 'not met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", nargs="+", default=["1024x20", "4096x40"], help="SIZExFRAMES")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    rows = []
    for spec in args.sizes:
        size, frames = (int(v) for v in spec.split("x"))
        rows += measure_compute(size, frames, device, args.repeats)
    print_rows(rows, name)


if __name__ == "__main__":
    main()
