"""Simulator throughput: movies per second at 1024² and 4096², against a microscope's real pace.

Simulates a few tilts (10 frames each, LZW TIFF) at each size and prints movies/s, the ratio to one
PACE microscope's acquisition rate (about 500 movies an hour), and, as the in-process baseline of the
costliest step, the table Poisson sampler against numpy's ``rng.poisson`` on a frame of that size::

    python benchmarks/simulator_throughput.py [--movies 6 2] [--frames 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tiltstream.connectors.simulator import SimulatorSettings, simulate_session
from tiltstream.connectors.simulator.imaging import PoissonSampler

#: One microscope collecting PACE tilt series: four of them make about 2,000 movies an hour.
MICROSCOPE_MOVIES_PER_SECOND = 2000 / 4 / 3600


def _throughput(size: int, movies: int, frames: int, workdir: Path) -> float:
    step = 60.0 / max((movies - 1) // 2, 1)
    settings = SimulatorSettings(
        size_pixels=size, frames=frames, max_tilt_degrees=60.0, tilt_step_degrees=step, seed=1
    )
    session = workdir / f"s{size}"
    started = time.perf_counter()
    truths = simulate_session(session, settings)
    elapsed = time.perf_counter() - started
    shutil.rmtree(session)
    return len(truths[0].tilts) / elapsed


def _sampler_ratio(size: int, repeats: int = 3) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    mean = (0.675 * (1 + 0.1 * rng.standard_normal((size, size)))).astype(np.float32)
    sampler = PoissonSampler(float(mean.max()) * 2.5)
    sampler.sample(mean, rng)
    started = time.perf_counter()
    for _ in range(repeats):
        sampler.sample(mean, rng)
    table = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        rng.poisson(mean).astype(np.uint8)
    numpy = (time.perf_counter() - started) / repeats
    return table, numpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--movies", type=int, nargs=2, default=[7, 3], help="movies at 1024² and at 4096²")
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size, movies in zip((1024, 4096), args.movies, strict=True):
            rate = _throughput(size, movies, args.frames, Path(tmp))
            table, numpy = _sampler_ratio(size)
            print(
                f"{size}² x {args.frames} frames: {rate:.3f} movies/s "
                f"({rate / MICROSCOPE_MOVIES_PER_SECOND:.1f}x one microscope's pace); "
                f"counting noise per frame {table * 1e3:.0f} ms vs numpy rng.poisson {numpy * 1e3:.0f} ms "
                f"(x{numpy / table:.1f})"
            )


if __name__ == "__main__":
    main()
