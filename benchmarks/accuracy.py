"""Accuracy scoreboard: motion, CTF and reconstruction against the simulator's ground truth (issue 21).

For every cell of a grid that spans real tomography — dose per frame, frames per tilt, micrograph
size, phantom contrast — each seed is one tilt series (±60°) simulated by
``tiltstream.connectors.simulator`` into a temporary session (LZW TIFF movies and ground-truth JSON,
as the demo writes them), and every movie goes through the builtin backends by their public
functions: ``correct_movie_builtin`` (motion), ``estimate_ctf_builtin`` (CTF, on the dose-weighted
sum, as the pipeline fits it) and ``reconstruct_builtin`` (alignment + weighted back-projection).

Per cell it prints the fraction of tilts within tolerance of the truth:

* **motion**: RMS over frames of the distance between the applied shifts and the negated true drift,
  both mean-centred (the reference frame is arbitrary), ``<= 0.5`` px;
* **defocus**: ``|mean estimated - mean true| <= 5 %`` of the true mean defocus;
* **astigmatism**, where the true ``|U - V|`` exceeds 500 Å: the estimated ``|U - V|`` within 25 % of
  it and the major axis within 15° (modulo 180°);
* **all**: the three together — the column the target applies to: **>= 99 % at >= 0.5 e/Å² per frame,
  >= 95 % at 0.2** (issue 21), printed ``met`` / ``NOT met``;

how many tilts the aggregator's default limits (``Rules``: total motion, CTF fit resolution) would
exclude, and how many of the out-of-tolerance tilts they catch; and the tomogram's FSC to the phantom
(mean over shells 1-10) against ASTRA's FBP of the same aligned stack (ASTRA's CPU build, slice by
slice; its axis conventions differ, so each mirror is scored and the best kept; each volume is
registered to the phantom by whole-voxel cross-correlation first).

Run (CPU: ``--quick`` is a few minutes; the whole grid is hours, a GPU makes it practical)::

    python benchmarks/accuracy.py --quick
    python benchmarks/accuracy.py --doses 0.2,0.5 --frames 8 --sizes 512 --seeds 3 --contrasts low
    python benchmarks/accuracy.py --gpu              # adds 4096², runs on CUDA
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tiltstream.connectors.simulator.ground_truth import SeriesTruth, TiltTruth
from tiltstream.connectors.simulator.phantom import Phantom, load_phantom, render_volume
from tiltstream.connectors.simulator.session import simulate_session
from tiltstream.connectors.simulator.settings import SimulatorSettings
from tiltstream.connectors.simulator.truth_comparison import (
    ASTIGMATISM_ANGLE_TOLERANCE_DEGREES,
    ASTIGMATISM_CHECKED_ABOVE_ANGSTROMS,
    ASTIGMATISM_TOLERANCE_FRACTION,
    DEFOCUS_TOLERANCE_FRACTION,
    DRIFT_TOLERANCE_PIXELS,
    astigmatism_within_tolerance,
    axis_difference_degrees,
    defocus_error_fraction,
    drift_rms_pixels,
)
from tiltstream.processors.ctf.builtin import estimate_ctf_builtin
from tiltstream.processors.ctf.processor import underfocus_angstroms
from tiltstream.processors.ctf.result import CtfParameters, CtfResult
from tiltstream.processors.ctf.settings import CtfSettings
from tiltstream.processors.motioncorr.builtin import correct_movie_builtin
from tiltstream.processors.motioncorr.movie_io import read_movie
from tiltstream.processors.motioncorr.result import MotionParameters, MotionResult
from tiltstream.processors.motioncorr.trajectory import drift_fields
from tiltstream.processors.reconstruct.builtin import reconstruct_builtin
from tiltstream.processors.reconstruct.ctf_correction import SeriesCtf
from tiltstream.processors.reconstruct.result import ReconstructionParameters
from tiltstream.processors.reconstruct.settings import ReconstructionSettings
from tiltstream.streams.aggregator.rules import Rules

__all__ = [
    "ASTIGMATISM_ANGLE_TOLERANCE_DEGREES",
    "ASTIGMATISM_CHECKED_ABOVE_ANGSTROMS",
    "ASTIGMATISM_TOLERANCE_FRACTION",
    "CONTRASTS",
    "DEFOCUS_TOLERANCE_FRACTION",
    "DRIFT_TOLERANCE_PIXELS",
    "Cell",
    "CellScore",
    "Options",
    "TiltScore",
    "astigmatism_within_tolerance",
    "axis_difference_degrees",
    "defocus_error_fraction",
    "drift_rms_pixels",
    "fourier_shell_correlation",
    "mean_fsc",
    "score_cell",
    "score_tilt",
    "target_fraction",
]

#: Phantoms: ``high`` is the simulator's default specimen (gold beads, vesicles, 1800 Å of ice);
#: ``low`` has no gold, fewer and fainter features in thicker ice (fewer electrons, less contrast).
CONTRASTS: dict[str, dict[str, Any]] = {
    "high": {},
    "low": {
        "gold_beads_per_square_micrometre": 0.0,
        "vesicles_per_square_micrometre": 2.0,
        "particles_per_square_micrometre": 600.0,
        "ice_thickness_angstroms": 2500.0,
    },
}


def target_fraction(dose_per_frame_e_per_angstrom2: float) -> float:
    """Issue 21's target: 99 % of tilts within tolerance at >= 0.5 e/Å² per frame, 95 % below."""
    return 0.99 if dose_per_frame_e_per_angstrom2 >= 0.5 - 1e-9 else 0.95


# --- one tilt against its truth (the comparisons: connectors/simulator/truth_comparison.py) ------


@dataclass(frozen=True)
class TiltScore:
    """One tilt's estimates against its truth, and whether the default rules would exclude it."""

    tilt_angle_degrees: float
    drift_rms_pixels: float
    defocus_error_fraction: float
    astigmatism_ok: bool | None  # None: not checked (true astigmatism <= 500 Å)
    total_motion_angstroms: float
    fit_resolution_angstroms: float

    @property
    def motion_ok(self) -> bool:
        return self.drift_rms_pixels <= DRIFT_TOLERANCE_PIXELS

    @property
    def defocus_ok(self) -> bool:
        return self.defocus_error_fraction <= DEFOCUS_TOLERANCE_FRACTION

    @property
    def within_tolerance(self) -> bool:
        return self.motion_ok and self.defocus_ok and self.astigmatism_ok is not False

    def excluded_by(self, rules: Rules) -> bool:
        """Whether ``rules``' limits (total motion, CTF fit resolution) leave this tilt out."""
        return (
            self.total_motion_angstroms > rules.max_total_motion_angstroms
            or self.fit_resolution_angstroms > rules.max_ctf_fit_resolution_angstroms
        )


def score_tilt(
    truth: TiltTruth, motion: MotionResult, movie_pixel_angstroms: float, ctf: CtfResult
) -> TiltScore:
    """Compare one tilt's motion and CTF estimates with the simulator's truth."""
    estimated = (ctf.defocus_u_angstroms, ctf.defocus_v_angstroms)
    true = (truth.defocus_u_angstroms, truth.defocus_v_angstroms)
    return TiltScore(
        tilt_angle_degrees=truth.nominal_tilt_angle_degrees,
        drift_rms_pixels=drift_rms_pixels(
            np.asarray(motion.shifts_angstroms) / movie_pixel_angstroms, np.asarray(truth.frame_shifts_pixels)
        ),
        defocus_error_fraction=defocus_error_fraction(estimated, true),
        astigmatism_ok=astigmatism_within_tolerance(
            estimated, ctf.astigmatism_angle_degrees, true, truth.astigmatism_angle_degrees
        ),
        total_motion_angstroms=float(
            drift_fields(np.asarray(motion.shifts_angstroms))["total_motion_angstroms"]
        ),
        fit_resolution_angstroms=ctf.fit_resolution_angstroms,
    )


# --- one tilt series through the builtin backends --------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell of the grid."""

    dose_per_frame_e_per_angstrom2: float
    frames: int
    size_pixels: int
    contrast: str


@dataclass(frozen=True)
class Options:
    """What every cell shares."""

    seeds: int = 5
    tilt_step_degrees: float = 3.0
    max_tilt_degrees: float = 60.0
    astigmatism_angstroms: float = 1000.0
    patches: int = 1
    reconstruct: bool = True
    binning: int = 4
    thickness_angstroms: float = 3000.0
    device: str = "cpu"


def simulator_settings(cell: Cell, seed: int, options: Options) -> SimulatorSettings:
    """The simulator's settings for one seed of ``cell`` (one position, one tilt series)."""
    return SimulatorSettings(
        session_id=f"accuracy-{seed}",
        seed=seed,
        positions=1,
        size_pixels=cell.size_pixels,
        frames=cell.frames,
        dose_per_tilt_e_per_angstrom2=cell.dose_per_frame_e_per_angstrom2 * cell.frames,
        max_tilt_degrees=options.max_tilt_degrees,
        tilt_step_degrees=options.tilt_step_degrees,
        astigmatism_angstroms=options.astigmatism_angstroms,
        **CONTRASTS[cell.contrast],
    )


def ctf_parameters(pixel_angstroms: float, truth: SeriesTruth) -> CtfParameters:
    """The CTF service's parameters (its settings' defaults), as its ``parameters_of`` builds them."""
    s = CtfSettings()
    return CtfParameters(
        pixel_size_angstroms=pixel_angstroms,
        voltage_kv=truth.voltage_kv,
        spherical_aberration_mm=truth.spherical_aberration_mm,
        amplitude_contrast=truth.amplitude_contrast,
        box_size_pixels=s.box_size_pixels,
        min_resolution_angstroms=s.min_resolution_angstroms,
        max_resolution_angstroms=s.max_resolution_angstroms,
        min_defocus_angstroms=s.min_defocus_angstroms,
        max_defocus_angstroms=s.max_defocus_angstroms,
        defocus_step_angstroms=s.defocus_step_angstroms,
        # the mdoc's TargetDefocus, which the motion event carries to the CTF service
        target_defocus_angstroms=underfocus_angstroms(SimulatorSettings().target_defocus_micrometres),
        target_window_angstroms=s.target_window_angstroms,
    )


def process_tilt(
    session: Path, series: SeriesTruth, tilt: TiltTruth, options: Options, device: torch.device
) -> tuple[np.ndarray, CtfResult, TiltScore]:
    """Motion-correct and CTF-fit one movie; its micrograph ``(h, w)``, CTF and score."""
    with (session / tilt.movie).open("rb") as stream:
        frames = read_movie(stream, series.movie_format, series.frames)  # (t, h, w)
    pixel = series.pixel_size_angstroms
    parameters = MotionParameters(
        pixel_size_angstroms=pixel,
        dose_per_frame_e_per_angstrom2=tilt.dose_e_per_angstrom2 / series.frames,
        prior_dose_e_per_angstrom2=tilt.prior_dose_e_per_angstrom2,
        voltage_kv=series.voltage_kv,
        patches_x=options.patches,
        patches_y=options.patches,
    )
    motion = correct_movie_builtin(frames, None, parameters, device)
    micrograph = motion.dose_weighted if motion.dose_weighted is not None else motion.summed
    ctf = estimate_ctf_builtin(micrograph, ctf_parameters(motion.pixel_size_angstroms, series), device)
    return micrograph, ctf, score_tilt(tilt, motion, pixel, ctf)


# --- the tomogram against the phantom, ours and ASTRA's --------------------------------------------


def fourier_shell_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FSC of two ``(d, h, w)`` volumes in shells ``1 / (n * voxel)`` wide, ``n`` the shortest edge.

    Shell ``k`` holds the frequencies whose radius (cycles per voxel, isotropic) rounds to ``k / n``;
    the half-space of ``rfftn`` stands for the whole (its Hermitian half adds the same sums).
    """
    n = min(a.shape)
    fa, fb = np.fft.rfftn(a), np.fft.rfftn(b)
    fz = np.fft.fftfreq(a.shape[0])[:, None, None]
    fy = np.fft.fftfreq(a.shape[1])[None, :, None]
    fx = np.fft.rfftfreq(a.shape[2])[None, None, :]
    shell = np.rint(np.sqrt(fz**2 + fy**2 + fx**2) * n).astype(np.int64).ravel()
    cross = np.bincount(shell, (fa * np.conj(fb)).real.ravel())
    power = np.bincount(shell, (np.abs(fa) ** 2).ravel()) * np.bincount(shell, (np.abs(fb) ** 2).ravel())
    fsc: np.ndarray = cross / np.sqrt(np.maximum(power, 1e-30))
    return fsc[: n // 2 + 1]


def mean_fsc(volume: np.ndarray, reference: np.ndarray) -> float:
    """Mean FSC over shells 1-10 of two ``(d, h, w)`` volumes (down to ``n * voxel / 10``)."""
    return float(fourier_shell_correlation(volume, reference)[1:11].mean())


def register(reference: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """``reference`` rolled by the whole-voxel shift that maximises its cross-correlation with ``volume``."""
    a = np.fft.rfftn(volume - volume.mean())
    b = np.fft.rfftn(reference - reference.mean())
    correlation = np.fft.irfftn(a * np.conj(b), s=volume.shape, axes=(0, 1, 2))
    shift = np.unravel_index(int(np.argmax(correlation)), volume.shape)
    return np.roll(reference, tuple(int(s) for s in shift), axis=(0, 1, 2))


def registered_fsc(volume: np.ndarray, reference: np.ndarray) -> float:
    """FSC of ``volume`` to ``reference`` after registering the reference onto it."""
    return mean_fsc(np.ascontiguousarray(volume), register(reference, volume))


def phantom_reference(
    phantom: Phantom, axis_degrees: float, shape: tuple[int, int, int], voxel_angstroms: float
) -> np.ndarray:
    """The phantom in the tomogram's frame (tilt axis along y), box-averaged from a finer grid."""
    angle = math.radians(90.0 - axis_degrees)
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rotated = dataclasses.replace(phantom, centers_angstroms=phantom.centers_angstroms @ rotation.T)
    d, h, w = shape
    over = max(1, min(4, int((6e7 / (d * h * w)) ** (1 / 3))))  # fine grid of at most ~60 M voxels
    fine = render_volume(rotated, (d * over, h * over, w * over), voxel_angstroms / over)
    binned: np.ndarray = fine.reshape(d, over, h, over, w, over).mean(axis=(1, 3, 5))
    return binned


def astra_fbp(aligned: np.ndarray, angles_degrees: np.ndarray, depth: int) -> np.ndarray:
    """ASTRA's CPU FBP of an aligned ``(t, h, w)`` stack (axis along y), one ``(depth, w)`` slice per row."""
    import astra

    _, h, w = aligned.shape
    volume_geometry = astra.create_vol_geom(depth, w)
    projection_geometry = astra.create_proj_geom("parallel", 1.0, w, np.radians(angles_degrees))
    projector = astra.create_projector("linear", projection_geometry, volume_geometry)
    out = np.empty((depth, h, w), np.float32)  # (d, h, w)
    try:
        for row in range(h):
            sinogram = astra.data2d.create("-sino", projection_geometry, aligned[:, row, :])
            target = astra.data2d.create("-vol", volume_geometry, 0.0)
            config = astra.astra_dict("FBP")
            config.update(ProjectorId=projector, ProjectionDataId=sinogram, ReconstructionDataId=target)
            algorithm = astra.algorithm.create(config)
            astra.algorithm.run(algorithm)
            out[:, row, :] = astra.data2d.get(target)
            astra.algorithm.delete(algorithm)
            astra.data2d.delete([sinogram, target])
    finally:
        astra.projector.delete(projector)
    return out


def compare_reconstructions(
    micrographs: list[np.ndarray], ctfs: list[CtfResult], series: SeriesTruth, session: Path, options: Options
) -> tuple[float, float]:
    """The builtin tomogram's FSC to the phantom and ASTRA's FBP's, on the builtin's aligned stack."""
    angles = np.array([t.nominal_tilt_angle_degrees for t in series.counted_tilts()])
    order = np.argsort(angles)
    defaults = ReconstructionSettings()
    parameters = ReconstructionParameters(
        pixel_size_angstroms=series.pixel_size_angstroms,
        tilt_axis_angle_degrees=series.nominal_tilt_axis_angle_degrees,
        binning=options.binning,
        thickness_angstroms=options.thickness_angstroms,
        refine_tilt_axis=defaults.refine_tilt_axis,
        axis_search_degrees=defaults.axis_search_degrees,
        tile_sidelength_pixels=defaults.tile_sidelength_pixels,
        ctf=SeriesCtf(
            np.array([ctfs[i].defocus_u_angstroms for i in order]),
            np.array([ctfs[i].defocus_v_angstroms for i in order]),
            np.array([ctfs[i].astigmatism_angle_degrees for i in order]),
            series.voltage_kv,
            series.spherical_aberration_mm,
            series.amplitude_contrast,
        ),
    )
    device = torch.device(options.device)
    stack = np.stack([micrographs[i] for i in order])  # (t, h, w), ascending tilt
    result = reconstruct_builtin(stack, angles[order], parameters, device)
    tomogram = result.tomogram
    reference = phantom_reference(
        load_phantom(session / series.phantom),
        series.true_tilt_axis_angle_degrees,
        (tomogram.shape[0], tomogram.shape[1], tomogram.shape[2]),
        result.pixel_spacing_angstroms,
    )
    ours = registered_fsc(tomogram, reference)
    theirs = astra_fbp(result.aligned_stack, result.tilt_angles_degrees, tomogram.shape[0])
    mirrors = (theirs, theirs[::-1], theirs[:, :, ::-1], theirs[::-1, :, ::-1])
    return ours, max(registered_fsc(m, reference) for m in mirrors)


# --- a cell ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellScore:
    """Every tilt's score in a cell and each seed's FSC (ours, ASTRA's)."""

    cell: Cell
    tilts: list[TiltScore]
    fsc: list[tuple[float, float]]
    seconds: float

    def fraction(self, test: str) -> float:
        """Fraction of tilts passing ``test``: ``motion``, ``defocus``, ``astigmatism`` (of those checked)
        or ``all``; NaN where no tilt was checked."""
        if test == "astigmatism":
            checked = [t.astigmatism_ok for t in self.tilts if t.astigmatism_ok is not None]
            return sum(checked) / len(checked) if checked else math.nan
        if not self.tilts:
            return math.nan
        passed = [
            t.motion_ok if test == "motion" else t.defocus_ok if test == "defocus" else t.within_tolerance
            for t in self.tilts
        ]
        return sum(passed) / len(passed)

    @property
    def target(self) -> float:
        return target_fraction(self.cell.dose_per_frame_e_per_angstrom2)

    @property
    def target_met(self) -> bool:
        return self.fraction("all") >= self.target

    def exclusions(self, rules: Rules) -> tuple[int, int, int]:
        """(tilts the rules exclude, out-of-tolerance tilts, out-of-tolerance tilts the rules exclude)."""
        excluded = sum(t.excluded_by(rules) for t in self.tilts)
        bad = [t for t in self.tilts if not t.within_tolerance]
        return excluded, len(bad), sum(t.excluded_by(rules) for t in bad)


def score_cell(cell: Cell, options: Options) -> CellScore:
    """Simulate ``options.seeds`` tilt series of ``cell`` and score every tilt (and tomogram)."""
    start = time.perf_counter()
    device = torch.device(options.device)
    tilts: list[TiltScore] = []
    fsc: list[tuple[float, float]] = []
    for seed in range(options.seeds):
        with tempfile.TemporaryDirectory(prefix="accuracy-") as folder:
            session = Path(folder)
            (series,) = simulate_session(session, simulator_settings(cell, seed, options))
            done = [process_tilt(session, series, t, options, device) for t in series.counted_tilts()]
            tilts += [score for _, _, score in done]
            if options.reconstruct:
                fsc.append(
                    compare_reconstructions(
                        [m for m, _, _ in done], [c for _, c, _ in done], series, session, options
                    )
                )
    return CellScore(cell, tilts, fsc, time.perf_counter() - start)


# --- printing --------------------------------------------------------------------------------------

HEADER = (
    f"{'dose/frame':>10} {'frames':>6} {'size':>5} {'phantom':>7} {'tilts':>5} "
    f"{'motion':>7} {'defocus':>7} {'astig':>7} {'all':>7} {'target':>7} {'':>7} "
    f"{'excl':>5} {'caught':>7} {'FSC ours':>8} {'ASTRA':>6} {'':>3} {'s':>6}"
)


def _percent(value: float) -> str:
    return "    n/a" if math.isnan(value) else f"{100 * value:6.1f}%"


def format_row(score: CellScore, rules: Rules) -> str:
    """One line of the scoreboard."""
    c = score.cell
    excluded, bad, caught = score.exclusions(rules)
    if score.fsc:
        ours = statistics.mean(f for f, _ in score.fsc)
        theirs = statistics.mean(a for _, a in score.fsc)
        fsc = f"{ours:8.3f} {theirs:6.3f} {'>=' if ours >= theirs else '< ':>3}"
    else:
        fsc = f"{'-':>8} {'-':>6} {'':>3}"
    return (
        f"{c.dose_per_frame_e_per_angstrom2:10.2f} {c.frames:6d} {c.size_pixels:5d} {c.contrast:>7} "
        f"{len(score.tilts):5d} {_percent(score.fraction('motion'))} {_percent(score.fraction('defocus'))} "
        f"{_percent(score.fraction('astigmatism'))} {_percent(score.fraction('all'))} "
        f"{_percent(score.target)} {'met' if score.target_met else 'NOT met':>7} "
        f"{excluded:5d} {f'{caught}/{bad}':>7} {fsc} {score.seconds:6.0f}"
    )


def grid(
    doses: Sequence[float], frames: Sequence[int], sizes: Sequence[int], contrasts: Sequence[str]
) -> list[Cell]:
    """Every combination, in the order printed."""
    return [Cell(d, f, s, c) for s in sizes for c in contrasts for d in doses for f in frames]


def _numbers(text: str, kind: type[Any]) -> list[Any]:
    return [kind(v) for v in text.split(",") if v]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="512², 8 frames, 2 seeds, tilts every 15°")
    parser.add_argument("--doses", default="0.2,0.5,1.0", help="e/Å² per frame, comma-separated")
    parser.add_argument("--frames", default="4,8,10", help="frames per tilt, comma-separated")
    parser.add_argument("--sizes", default=None, help="micrograph edges (default 512,1024; +4096 with --gpu)")
    parser.add_argument("--contrasts", default="low,high", help=f"phantoms: {', '.join(CONTRASTS)}")
    parser.add_argument("--seeds", type=int, default=None, help="tilt series per cell (default 5)")
    parser.add_argument("--tilt-step", type=float, default=None, help="degrees between tilts (default 3)")
    parser.add_argument("--astigmatism", type=float, default=1000.0, help="true |U - V| in Å")
    parser.add_argument("--patches", type=int, default=1, help="motion patches per side (the service: 5)")
    parser.add_argument("--no-reconstruction", action="store_true", help="tilts only, no tomograms")
    parser.add_argument("--gpu", action="store_true", help="run on CUDA and add 4096² micrographs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    a = parse_arguments(argv)
    if a.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu: CUDA is not available")
    sizes = a.sizes or ("512" if a.quick else "512,1024,4096" if a.gpu else "512,1024")
    frames = "8" if a.quick and a.frames == "4,8,10" else a.frames
    options = Options(
        seeds=a.seeds or (2 if a.quick else 5),
        tilt_step_degrees=a.tilt_step or (15.0 if a.quick else 3.0),
        astigmatism_angstroms=a.astigmatism,
        patches=a.patches,
        reconstruct=not a.no_reconstruction,
        device="cuda" if a.gpu else "cpu",
    )
    cells = grid(
        _numbers(a.doses, float), _numbers(frames, int), _numbers(sizes, int), a.contrasts.split(",")
    )
    rules = Rules()
    print(
        f"{len(cells)} cells x {options.seeds} seeds, ±{options.max_tilt_degrees:g}°"
        f" by {options.tilt_step_degrees:g}°, astigmatism {options.astigmatism_angstroms:g} Å,"
        f" {options.patches}² motion patches, {options.device};"
        f" default rules: motion <= {rules.max_total_motion_angstroms:g} Å,"
        f" CTF fit <= {rules.max_ctf_fit_resolution_angstroms:g} Å"
    )
    print(HEADER, flush=True)
    scores = []
    for cell in cells:
        scores.append(score_cell(cell, options))
        print(format_row(scores[-1], rules), flush=True)
    met = sum(s.target_met for s in scores)
    print(f"target met in {met} of {len(scores)} cells")


if __name__ == "__main__":
    main()
