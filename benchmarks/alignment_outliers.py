"""Alignment outliers at tomography doses: which tilts the builtin alignment leaves out, and what it gains.

Each seed is one ±60° tilt series (3° steps) of the simulator's phantom (``connectors.simulator``: a
600 Å slab of particles and vesicles, ice texture, the tilted specimen's CTF at 3 µm underfocus, shot
noise at ``--dose`` e/Å² per tilt, ``--pixel`` Å pixels), the specimen displaced by a random 60 Å per axis in
each tilt; the micrographs are the perfect motion-corrected sums. Then one tilt (a random one, the
same for every case of a seed) is spoilt:

* ``clean``: nothing (every tilt left out is a false positive);
* ``noise``: the tilt shows no specimen, shot noise at the same mean (an empty or lost field);
* ``dark``: the tilt got 3 % of the dose (a grid bar, the simulator's ``dark`` fault);
* ``jump``: the specimen moved 300 Å further in that tilt (a stage jump: a real shift, to follow).

Every case goes through ``reconstruct_builtin`` (binning 4) with the default outlier rule and without
one, and prints the tilts left out, the largest and RMS shift error against the truth of the tilts
used other than the spoilt one (whether it bent them; binned pixels, after removing what
fiducial-less alignment cannot know: a common translation and a height term ``z sin(tilt)``) and
the tomogram's FSC to the phantom (mean over shells 1-10, as ``accuracy.py`` scores it).

Run (CPU: about a minute per seed and case)::

    python benchmarks/alignment_outliers.py --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from accuracy import phantom_reference, registered_fsc

from tiltstream.connectors.simulator.imaging import CtfParameters
from tiltstream.connectors.simulator.phantom import Phantom, make_phantom
from tiltstream.connectors.simulator.projection import project_phantom
from tiltstream.connectors.simulator.tilted_ctf import apply_tilted_ctf
from tiltstream.processors.reconstruct.builtin import reconstruct_builtin
from tiltstream.processors.reconstruct.result import ReconstructionParameters, ReconstructionResult

BINNING = 4
AXIS_FROM_X_DEGREES = 85.0
CASES = ("clean", "noise", "dark", "jump")


@dataclass(frozen=True)
class Conditions:
    """The micrographs' size, pixel and dose."""

    size_pixels: int
    pixel_angstroms: float
    dose_e_per_angstrom2: float  # per tilt


@dataclass(frozen=True)
class Series:
    """Micrographs in ascending tilt with their truth."""

    phantom: Phantom
    images: np.ndarray  # (t, h, w) float32 counts
    tilts_degrees: np.ndarray  # (t,)
    shifts_xy_angstroms: np.ndarray  # (t, 2) specimen displacement
    spoilt: int  # the tilt a case spoils


def _micrograph(
    phantom: Phantom,
    tilt: float,
    shift: np.ndarray,
    conditions: Conditions,
    rng: np.random.Generator,
    dose_fraction: float = 1.0,
) -> np.ndarray:  # (h, w)
    size, pixel = conditions.size_pixels, conditions.pixel_angstroms
    dose = conditions.dose_e_per_angstrom2 * dose_fraction
    phase, attenuation = project_phantom(
        phantom,
        tilt_degrees=tilt,
        tilt_axis_angle_degrees=AXIS_FROM_X_DEGREES,
        shape=(size, size),
        pixel_size_angstroms=pixel,
        specimen_shift_angstroms=(float(shift[0]), float(shift[1])),
        voltage_kv=300.0,
        inelastic_mean_free_path_angstroms=3800.0,
        texture_radians=0.12,
        rng=rng,
    )
    optics = CtfParameters(30000.0, 30000.0, 0.0, 300.0, 2.7, 0.07, 0.0)
    contrast = apply_tilted_ctf(phase, pixel, tilt, AXIS_FROM_X_DEGREES, optics)
    expected = dose * pixel**2 * attenuation * np.clip(1.0 + 2.0 * contrast, 0.0, None)
    counts: np.ndarray = rng.poisson(expected).astype(np.float32)
    return counts


def simulate(seed: int, conditions: Conditions) -> Series:
    """One clean series of ``seed``."""
    rng = np.random.default_rng(seed)
    size, pixel = conditions.size_pixels, conditions.pixel_angstroms
    phantom = make_phantom(
        rng,
        half_extent_angstroms=size * pixel * 0.75,
        thickness_angstroms=600.0,
        particles_per_square_micrometre=1500,
        vesicles_per_square_micrometre=20,
        gold_beads_per_square_micrometre=0,
    )
    tilts = np.arange(-60.0, 60.1, 3.0)
    shifts = rng.normal(0.0, 60.0, (len(tilts), 2))
    shifts[np.argmin(np.abs(tilts))] = 0.0
    images = np.stack(
        [_micrograph(phantom, t, s, conditions, rng) for t, s in zip(tilts, shifts, strict=True)]
    )
    spoilt = int(rng.choice(np.flatnonzero(np.abs(tilts) > 1.0)))
    return Series(phantom, images, tilts, shifts, spoilt)


def spoil(series: Series, case: str, conditions: Conditions, seed: int) -> Series:
    """``series`` with its spoilt tilt made as ``case`` says (see the module docstring)."""
    if case == "clean":
        return series
    rng = np.random.default_rng(1000 + seed)
    images, shifts, i = series.images.copy(), series.shifts_xy_angstroms.copy(), series.spoilt
    if case == "noise":
        images[i] = rng.poisson(float(images[i].mean()), images[i].shape).astype(np.float32)
    elif case == "dark":
        images[i] = _micrograph(series.phantom, series.tilts_degrees[i], shifts[i], conditions, rng, 0.03)
    else:
        shifts[i] += 300.0 / math.sqrt(2.0)
        images[i] = _micrograph(series.phantom, series.tilts_degrees[i], shifts[i], conditions, rng)
    return dataclasses.replace(series, images=images, shifts_xy_angstroms=shifts)


def shift_errors(series: Series, result: ReconstructionResult, pixel: float) -> np.ndarray:
    """Per used tilt but the spoilt one, the shift error in binned pixels, the gauge (a translation and
    the height term) fitted on them and removed."""
    used = result.stack_indices if result.stack_indices is not None else np.arange(len(series.tilts_degrees))
    rows = used != series.spoilt  # (k,) of the result's rows
    used = used[rows]
    error = (result.shifts_xy_pixels[rows] + series.shifts_xy_angstroms[used] / pixel) / BINNING  # (k, 2)
    phi = math.radians(AXIS_FROM_X_DEGREES)
    across, along = np.array([-math.sin(phi), math.cos(phi)]), np.array([math.cos(phi), math.sin(phi)])
    sines = np.sin(np.radians(series.tilts_degrees[used]))
    design = np.stack([np.ones_like(sines), sines], axis=1)  # (k, 2)
    fit, *_ = np.linalg.lstsq(design, error @ across, rcond=None)
    error = (
        error - np.outer(design @ fit, across) - np.outer(np.full(len(used), (error @ along).mean()), along)
    )
    norms: np.ndarray = np.linalg.norm(error, axis=1)
    return norms


def run_case(series: Series, pixel: float, outliers: bool) -> tuple[ReconstructionResult, float]:
    """The builtin reconstruction with the default outlier rule (or none) and its FSC to the phantom."""
    parameters = ReconstructionParameters(
        pixel_size_angstroms=pixel,
        tilt_axis_angle_degrees=AXIS_FROM_X_DEGREES,
        binning=BINNING,
        thickness_angstroms=1200.0,
    )
    if not outliers:
        parameters = dataclasses.replace(parameters, outlier_rule=None)
    result = reconstruct_builtin(series.images, series.tilts_degrees, parameters, torch.device("cpu"))
    shape = (result.tomogram.shape[0], result.tomogram.shape[1], result.tomogram.shape[2])
    reference = phantom_reference(series.phantom, AXIS_FROM_X_DEGREES, shape, result.pixel_spacing_angstroms)
    return result, registered_fsc(result.tomogram, reference)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="micrograph pixels")
    parser.add_argument("--pixel", type=float, default=3.0, help="Å per micrograph pixel")
    parser.add_argument("--dose", type=float, default=3.0, help="e/Å² per tilt")
    a = parser.parse_args(argv)
    conditions = Conditions(a.size, a.pixel, a.dose)
    pixel = a.pixel
    print(
        f"{a.seeds} seeds, {a.size}² at {pixel:g} Å, {a.dose:g} e/Å² per tilt, ±60° by 3°, binning {BINNING}"
    )
    print(
        f"{'seed':>4} {'case':>6} {'spoilt':>7} {'left out (°)':>16} {'max err':>8} {'RMS':>5} {'FSC':>6}"
        f" | without the rule: {'max err':>8} {'FSC':>6}"
    )
    for seed in range(a.seeds):
        clean = simulate(seed, conditions)
        for case in CASES:
            series = spoil(clean, case, conditions, seed)
            with_rule, fsc = run_case(series, pixel, True)
            without, fsc_without = run_case(series, pixel, False)
            errors = shift_errors(series, with_rule, pixel)
            errors_without = shift_errors(series, without, pixel)
            left_out = ",".join(f"{series.tilts_degrees[i]:+.0f}" for i in sorted(with_rule.dropped)) or "-"
            print(
                f"{seed:4d} {case:>6} {series.tilts_degrees[series.spoilt]:+6.0f}° {left_out:>16}"
                f" {errors.max():8.2f} {math.sqrt(float((errors**2).mean())):5.2f} {fsc:6.3f}"
                f" | {'':>18}{errors_without.max():8.2f} {fsc_without:6.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
