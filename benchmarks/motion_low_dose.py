"""Whole-frame motion at low dose: the trajectory prior against none, on the simulator's tilt series.

For each dose per frame, ``--seeds`` tilt series (512², 8 frames, tilts every 15°, as
``accuracy.py --quick``) are simulated; every movie's whole-frame shifts are estimated by the
builtin Fourier path with each ``--curvature`` of the smooth-trajectory prior (the expected
second difference of the drift, px per frame², weighed against each frame's shot noise; 0 is
none) and by the library path, and scored as the accuracy scoreboard scores motion: RMS over
frames of the distance to the negated true drift, both mean-centred, within 0.5 px. Prints one
line per dose and method; ``--figure`` saves the errors against dose as a PNG.

    python benchmarks/motion_low_dose.py --doses 0.1,0.2,0.5 --seeds 2 --figure low_dose.png
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from accuracy import DRIFT_TOLERANCE_PIXELS, Cell, Options, drift_rms_pixels, simulator_settings

from tiltstream.connectors.simulator.session import simulate_session
from tiltstream.processors.motioncorr.builtin import binned_spectra
from tiltstream.processors.motioncorr.global_shifts import estimate_global_shifts
from tiltstream.processors.motioncorr.library import correct_movie_library
from tiltstream.processors.motioncorr.movie_io import read_movie
from tiltstream.processors.motioncorr.result import MotionParameters


def errors_for_dose(
    dose: float, seeds: int, smoothings: list[float], library: bool
) -> dict[str, list[float]]:
    """Drift RMS errors (px) of every tilt, by method, at ``dose`` e/Å² per frame."""
    cell, options = Cell(dose, 8, 512, "high"), Options(seeds=seeds, tilt_step_degrees=15.0)
    errors: dict[str, list[float]] = {f"prior {s:g}": [] for s in smoothings}
    if library:
        errors["library"] = []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory(prefix="lowdose-") as folder:
            (series,) = simulate_session(Path(folder), simulator_settings(cell, seed, options))
            for tilt in series.counted_tilts():
                with (Path(folder) / tilt.movie).open("rb") as stream:
                    frames = read_movie(stream, series.movie_format, series.frames)
                truth = np.asarray(tilt.frame_shifts_pixels)
                pixel = series.pixel_size_angstroms
                with torch.no_grad():
                    spectra, shape = binned_spectra(torch.from_numpy(frames.astype(np.float32)), 1)
                    for s in smoothings:
                        displacement = estimate_global_shifts(spectra, shape, pixel, curvature_pixels=s)
                        applied = -displacement.flip(1).numpy()
                        errors[f"prior {s:g}"].append(drift_rms_pixels(applied, truth))
                if library:
                    parameters = MotionParameters(pixel, dose, 0.0, series.voltage_kv)
                    result = correct_movie_library(frames, None, parameters, torch.device("cpu"))
                    errors["library"].append(drift_rms_pixels(result.shifts_angstroms / pixel, truth))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--doses", default="0.1,0.2,0.5")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--curvature", default="0,0.1,0.3,1", help="prior strengths (px/frame²); 0: none")
    parser.add_argument("--no-library", action="store_true")
    parser.add_argument("--figure", type=Path)
    args = parser.parse_args()
    doses = [float(d) for d in args.doses.split(",")]
    smoothings = [float(s) for s in args.curvature.split(",")]
    print(f"{'dose/frame':>10} {'method':>12} {'tilts':>5} {'<=0.5 px':>9} {'median px':>10}")
    table: dict[str, list[tuple[float, float, float]]] = {}
    for dose in doses:
        for method, values in errors_for_dose(dose, args.seeds, smoothings, not args.no_library).items():
            within = float(np.mean(np.asarray(values) <= DRIFT_TOLERANCE_PIXELS))
            median = statistics.median(values)
            table.setdefault(method, []).append((dose, within, median))
            print(
                f"{dose:10.2f} {method:>12} {len(values):5d} {100 * within:8.0f}% {median:10.3f}", flush=True
            )
    if args.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        for method, rows in table.items():
            x = [r[0] for r in rows]
            left.plot(x, [100 * r[1] for r in rows], "o-", label=method)
            right.plot(x, [r[2] for r in rows], "o-", label=method)
        left.set(xlabel="dose per frame (e/Å²)", ylabel="tilts within 0.5 px (%)", xscale="log")
        right.set(
            xlabel="dose per frame (e/Å²)", ylabel="median drift error (px)", xscale="log", yscale="log"
        )
        right.axhline(DRIFT_TOLERANCE_PIXELS, color="grey", lw=0.8)
        left.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(args.figure, dpi=120)


if __name__ == "__main__":
    main()
