"""Processing cost per movie against the FFT floor, on CUDA (or any device), for the processors' backends.

For each size it prints seconds per movie for motion correction (global only: the builtin Fourier
path and the library path it replaced, each with its drift error; and with 5 x 5 local patches)
and for CTF estimation, and the ratio of each to one forward + inverse real FFT pass over the same
data (all frames for motion correction, the micrograph for CTF): the compute floor of any
Fourier-based method. Run where a GPU is available::

    python benchmarks/processors_gpu.py --device cuda                      # 1024² x 20 and 4096² x 40
    python benchmarks/processors_gpu.py --device cpu --sizes 1024x20       # what processors_throughput runs

It needs no broker or database: the backends, and the simulator's doming for the local-motion movie.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tiltstream.connectors.simulator.doming import Doming, doming_shifts_pixels, random_doming
from tiltstream.connectors.simulator.truth_comparison import drift_and_doming_pixels, field_rms_pixels
from tiltstream.processors.ctf.builtin import estimate_ctf_builtin
from tiltstream.processors.ctf.result import CtfParameters
from tiltstream.processors.motioncorr.builtin import binned_spectra, correct_movie_builtin, local_motion
from tiltstream.processors.motioncorr.global_shifts import estimate_global_shifts
from tiltstream.processors.motioncorr.library import correct_movie_library, library_field
from tiltstream.processors.motioncorr.local_sums import displacement_field
from tiltstream.processors.motioncorr.result import MotionParameters

__all__ = ["measure_compute", "print_rows"]

PIXEL = 1.0
DOMING_ANGSTROMS = 4.0  # the doming's largest displacement in the local-motion movie
FIELD_STEP = 16  # the fields are compared every FIELD_STEP pixels


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


def _noiseless_frames(size: int, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random specimen drifting by a random walk: ``(frames (t, h, w) float32, drift (t, 2) xy)``."""
    ky = np.fft.fftfreq(size)[:, None].astype(np.float32)
    kx = np.fft.rfftfreq(size)[None, :].astype(np.float32)
    specimen = np.fft.rfft2(rng.standard_normal((size, size)).astype(np.float32))
    specimen *= np.exp(-(kx**2 + ky**2) / (2 * 0.05**2))
    drift = np.cumsum(rng.normal(0, 1.5, (frames, 2)), axis=0)
    clean = np.empty((frames, size, size), dtype=np.float32)
    for i, (dx, dy) in enumerate(drift):
        frame = np.fft.irfft2(specimen * np.exp(-2j * np.pi * (kx * dx + ky * dy)), s=(size, size))
        clean[i] = 1 + 0.2 * frame / frame.std()
    return clean, drift


def _domed(clean: np.ndarray, doming: Doming) -> np.ndarray:
    """``clean`` with the doming's displacement added to every frame (bicubic, in torch: fast at 4096²)."""
    t, h, w = clean.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    final = dataclasses.replace(doming, time_profile=(1.0,))  # the field at the last frame
    radial = doming_shifts_pixels(final, np.stack([x.ravel(), y.ravel()], axis=1))[0].astype(np.float32)
    base = np.stack([x, y], axis=-1)  # (h, w, 2) xy
    out = np.empty_like(clean)
    for i in range(t):  # the movie's making, not a measured path
        source = base - doming.time_profile[i] * radial.reshape(h, w, 2)
        grid = torch.from_numpy((2 * source + 1) / np.array([w, h], dtype=np.float32) - 1)[None]
        frame = torch.from_numpy(clean[i])[None, None]
        out[i] = F.grid_sample(frame, grid, mode="bicubic", padding_mode="border", align_corners=False)[0, 0]
    return out


def _movies(size: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, Doming]:
    """Poisson movies (2 counts/px/frame) of one drifting specimen, without and with doming.

    Returns ``(rigid (t, h, w), domed (t, h, w), drift (t, 2) xy, doming)``: frame ``i`` shows the
    specimen displaced by ``drift[i]`` (plus the doming's field in ``domed``).
    """
    rng = np.random.default_rng(seed)
    clean, drift = _noiseless_frames(size, frames, rng)
    doming = random_doming(rng, size, frames, DOMING_ANGSTROMS / PIXEL)
    rigid = rng.poisson(2.0 * np.clip(clean, 0.05, None)).astype(np.float32)
    domed = rng.poisson(2.0 * np.clip(_domed(clean, doming), 0.05, None)).astype(np.float32)
    return rigid, domed, drift, doming


def _drift_error_pixels(applied_xy_angstroms: np.ndarray, drift_xy_pixels: np.ndarray) -> float:
    """RMS distance (pixels) between the applied shifts and the negated true drift, both mean-centred."""
    a = applied_xy_angstroms / PIXEL
    a = a - a.mean(axis=0)
    b = -(drift_xy_pixels - drift_xy_pixels.mean(axis=0))
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean()))


def _fft_floor(data: torch.Tensor) -> None:
    torch.fft.irfft2(torch.fft.rfft2(data), s=data.shape[-2:])


def _row(step: str, shape: str, seconds: float, floor: float, **accuracy: float) -> dict[str, Any]:
    row: dict[str, Any] = {"step": step, "shape": shape, "seconds": seconds, "floor_seconds": floor}
    row["peak_host_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # so far, this process
    return row | {"ratio": seconds / floor} | accuracy


def _field_errors(
    movie: np.ndarray, drift: np.ndarray, doming: Doming, parameters: MotionParameters, device: torch.device
) -> tuple[float, float]:
    """RMS error (px) of the local model's field and of the whole-frame model, every 16 px of the frame."""
    t, h, w = movie.shape
    with torch.no_grad():
        spectra, shape = binned_spectra(torch.from_numpy(movie).to(device), 1)
        rigid = estimate_global_shifts(spectra, shape, PIXEL, curvature_pixels=1.5 / PIXEL)
        local = local_motion(spectra, shape, rigid, parameters)
        field = displacement_field(local, rigid, shape, slice(0, t), step_pixels=FIELD_STEP)  # (t, 2, h', w')
    ys, xs = np.mgrid[0:h:FIELD_STEP, 0:w:FIELD_STEP]
    truth = drift_and_doming_pixels(drift, doming, np.stack([xs.ravel(), ys.ravel()], axis=1))
    ours = field.reshape(t, 2, -1).permute(0, 2, 1).flip(-1).cpu().numpy().astype(np.float64)
    whole = np.repeat(rigid.flip(-1).cpu().numpy()[:, None, :].astype(np.float64), ours.shape[1], axis=1)
    return field_rms_pixels(ours, truth), field_rms_pixels(whole, truth)


def _library_field_error(
    movie: np.ndarray, drift: np.ndarray, doming: Doming, parameters: MotionParameters, device: torch.device
) -> tuple[float, float]:
    """Seconds of torch-motion-correction's local fit (from our whole-frame shifts) and its field's error."""
    t, h, _ = movie.shape
    on_device = torch.from_numpy(movie).to(device)
    with torch.no_grad():
        spectra, shape = binned_spectra(on_device, 1)
        rigid = estimate_global_shifts(spectra, shape, PIXEL, curvature_pixels=1.5 / PIXEL)
    start = time.perf_counter()
    field = library_field(on_device, PIXEL, rigid, parameters, device)
    _sync(device)
    seconds = time.perf_counter() - start
    m = h // FIELD_STEP
    with torch.no_grad():  # the library evaluates on its own grid: linspace over the frame, corners included
        values = torch.stack([field.evaluate_at_t(i / (t - 1), (m, m)) for i in range(t)]) / PIXEL
    grid = np.linspace(0, h - 1, m)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    truth = drift_and_doming_pixels(drift, doming, np.stack([xs.ravel(), ys.ravel()], axis=1))
    library = values.reshape(t, 2, -1).permute(0, 2, 1).flip(-1).cpu().numpy().astype(np.float64)
    return seconds, field_rms_pixels(library, truth)


def measure_compute(
    size: int,
    frames: int,
    device: torch.device,
    repeats: int = 2,
    patches: tuple[int, ...] = (1, 5),
    library_local: bool = True,
    library_global: bool = True,
) -> list[dict[str, Any]]:
    """Seconds per movie and their ratio to the FFT floor, for each backend configuration, with the
    accuracy of each beside it: whole-frame drift on a rigidly drifting movie, the field (drift plus
    doming) on the same specimen with doming."""
    rigid_movie, domed_movie, drift, doming = _movies(size, frames)
    floor = _best_of(lambda: _fft_floor(torch.from_numpy(rigid_movie).to(device)), device, repeats)
    data = f"{frames}x{size}x{size}"
    rows: list[dict[str, Any]] = []
    runs = [(f"motioncorr {n}x{n}", n, correct_movie_builtin) for n in patches]
    if 1 in patches and library_global:
        runs.insert(1, ("motioncorr 1x1 lib", 1, correct_movie_library))
    for step, count, backend in runs:
        parameters = MotionParameters(PIXEL, 0.1, 0.0, 300.0, patches_x=count, patches_y=count)
        movie = rigid_movie if count == 1 else domed_movie
        run = functools.partial(backend, movie, None, parameters, device)
        seconds = _best_of(run, device, repeats)
        if count == 1:
            error = _drift_error_pixels(run().shifts_angstroms, drift)
            rows.append(_row(step, data, seconds, floor, drift_pixels=error))
            continue
        local, whole = _field_errors(domed_movie, drift, doming, parameters, device)
        rows.append(_row(step, data, seconds, floor, drift_pixels=local, whole_frame_pixels=whole))
        if library_local:
            seconds, error = _library_field_error(domed_movie, drift, doming, parameters, device)
            rows.append(_row(f"{step} lib", data, seconds, floor, drift_pixels=error))
    micrograph = rigid_movie.sum(axis=0)
    on_device_2d = torch.from_numpy(micrograph).to(device)
    floor_ctf = _best_of(lambda: _fft_floor(on_device_2d), device, repeats)
    ctf_parameters = CtfParameters(PIXEL, 300.0, 2.7, 0.07, 512, 30.0, 5.0, 5000.0, 80000.0)
    seconds = _best_of(lambda: estimate_ctf_builtin(micrograph, ctf_parameters, device), device, repeats)
    rows.append(_row("ctf", f"{size}x{size}", seconds, floor_ctf))
    return rows


def print_rows(rows: list[dict[str, Any]], device: str) -> None:
    """One line per measurement; the drift column is the field's error for the local rows."""
    print(
        f"{'step':<20}{'data':>14}{'s/movie':>10}{'FFT floor s':>13}{'ratio':>9}{'error px':>10}"
        f"{'peak GiB':>10}   device"
    )
    for row in rows:
        drift = f"{row['drift_pixels']:>10.3f}" if "drift_pixels" in row else f"{'':>10}"
        print(
            f"{row['step']:<20}{row['shape']:>14}{row['seconds']:>10.3f}"
            f"{row['floor_seconds']:>13.4f}{row['ratio']:>9.1f}{drift}"
            f"{row['peak_host_gib']:>10.1f}   {device}"
        )
    for shape in dict.fromkeys(r["shape"] for r in rows):
        _summary({r["step"]: r for r in rows if r["shape"] == shape})


def _summary(by_step: dict[str, dict[str, Any]]) -> None:
    fourier, library = by_step.get("motioncorr 1x1"), by_step.get("motioncorr 1x1 lib")
    local, local_library = by_step.get("motioncorr 5x5"), by_step.get("motioncorr 5x5 lib")
    if fourier is not None and library is not None:
        print(
            f"{fourier['shape']} motioncorr 1x1 (global): Fourier path {fourier['ratio']:.1f}x the floor, "
            f"library path {library['ratio']:.1f}x ({library['seconds'] / fourier['seconds']:.1f}x faster); "
            f"drift error {fourier['drift_pixels']:.3f} px (library {library['drift_pixels']:.3f} px); "
            f"target <= 3x floor: {'met' if fourier['ratio'] <= 3 else 'not met'}"
        )
    if fourier is not None and local is not None:
        cost = local["seconds"] / fourier["seconds"]
        reference = (
            f"; the library's local fit {local_library['seconds']:.2f} s, "
            f"{local_library['drift_pixels']:.3f} px"
            if local_library is not None
            else ""
        )
        print(
            f"{local['shape']} motioncorr 5x5 (local): {cost:.2f}x the global path; field error "
            f"{local['drift_pixels']:.3f} px (whole-frame model {local['whole_frame_pixels']:.3f} px)"
            f"{reference}; "
            f"target <= 3x global and <= 0.5 px: "
            f"{'met' if cost <= 3 and local['drift_pixels'] <= 0.5 else 'not met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", nargs="+", default=["1024x20", "4096x40"], help="SIZExFRAMES")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--no-library-local", action="store_true", help="leave out the library's local fit (slow on a CPU)"
    )
    parser.add_argument(
        "--no-library", action="store_true", help="leave out both library paths (the references)"
    )
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
        rows += measure_compute(
            size,
            frames,
            device,
            args.repeats,
            library_local=not (args.no_library_local or args.no_library),
            library_global=not args.no_library,
        )
    print_rows(rows, name)


if __name__ == "__main__":
    main()
