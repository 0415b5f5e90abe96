"""EER reading: tiltstream's grouped reader against eerfile's ``render`` on the same simulated movie.

Writes one EER movie with the simulator's encoder (``--size`` pixels, ``--eer-frames`` electron frames
at ``--dose`` electrons per pixel in all), then renders it into groups of ``--group`` frames with
``read_eer`` (one electron frame decoded at a time) and with ``eerfile.render`` (the library
reference: it decodes the whole movie, then sums), checks they agree, and prints both times, their
ratio, and the EER frames decoded per second::

    python benchmarks/eer_read.py [--size 2048] [--eer-frames 200] [--group 20] [--dose 4.0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import eerfile
import numpy as np

from tiltstream.connectors.simulator.eer_writer import eer_events_from_counts, encode_eer
from tiltstream.processors.motioncorr.eer import EerRendering, read_eer


def _movie(path: Path, size: int, eer_frames: int, group: int, dose_e_per_pixel: float) -> None:
    rng = np.random.default_rng(0)
    output_frames = eer_frames // group
    counts = rng.poisson(dose_e_per_pixel / output_frames, (output_frames, size, size))  # (t, h, w)
    path.write_bytes(encode_eer(eer_events_from_counts(counts, group, rng), (size, size), 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--eer-frames", type=int, default=200)
    parser.add_argument("--group", type=int, default=20)
    parser.add_argument("--dose", type=float, default=4.0, help="electrons per pixel in the movie")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "movie.eer"
        _movie(path, args.size, args.eer_frames, args.group, args.dose)
        started = time.perf_counter()
        with path.open("rb") as stream:
            ours = read_eer(stream, EerRendering(args.group), path.name, args.eer_frames)
        ours_seconds = time.perf_counter() - started
        header = eerfile.data_models.EERHeader.from_file(path)
        started = time.perf_counter()
        reference = eerfile.render(path, args.group * header.dose_per_frame_electrons_per_square_angstrom)
        reference_seconds = time.perf_counter() - started
    agree = np.array_equal(ours, reference.astype(np.float32))
    print(f"{args.eer_frames} EER frames of {args.size}^2 in groups of {args.group}: agree {agree}")
    print(f"read_eer {ours_seconds:.2f} s ({args.eer_frames / ours_seconds:.0f} EER frames/s)")
    print(f"eerfile.render {reference_seconds:.2f} s; ratio {reference_seconds / ours_seconds:.2f}x")


if __name__ == "__main__":
    main()
