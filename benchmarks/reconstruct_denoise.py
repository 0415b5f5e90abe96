"""Reconstruction and denoising costs, and our weighted back-projection against ASTRA's FBP.

1. **Back-projection vs ASTRA** on one aligned stack (simulated phantom, 41 tilts, 512² micrographs
   binned 4): ours (``filtered_back_projection``), the library's (torch-tomogram's weighted
   back-projection, the reference) and ASTRA Toolbox's CPU FBP (2-D, slice by slice along the tilt
   axis; ASTRA's PyPI build has no CUDA here): seconds, the ratio ours / ASTRA against the target
   (<= 1.0x at >= ASTRA's FSC), and the mean FSC to the phantom (shells 1-10) of each.
2. **Seconds per tilt series** for the whole builtin backend (align + resample + reconstruct, binning
   4) at 512² and 1024² micrographs, 41 tilts.
3. **Topaz denoising** seconds for 64³ and 128³ volumes with the service's tiling.

Run on a CPU (defaults) or, where a GPU is available, at facility sizes::

    python benchmarks/reconstruct_denoise.py
    python benchmarks/reconstruct_denoise.py --device cuda --sizes 4096 --volumes 512 \\
        --patch 96 --padding 48 --no-astra

It imports only the backends and the simulator (torch, teamtomo, topaz-em, astra), no Kafka client.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch_fourier_shell_correlation import fourier_shell_correlation

from tiltstream.connectors.simulator.phantom import Phantom, make_phantom, render_volume
from tiltstream.connectors.simulator.projection import project_phantom
from tiltstream.processors.denoise.tiled import denoise_volume
from tiltstream.processors.denoise.topaz_model import load_topaz_model
from tiltstream.processors.reconstruct.builtin import reconstruct_builtin, weighted_back_projection
from tiltstream.processors.reconstruct.filtered_back_projection import filtered_back_projection
from tiltstream.processors.reconstruct.result import ReconstructionParameters

AXIS = 85.0
FIELD_ANGSTROMS = 2560.0  # the same specimen area at every size: only the sampling changes
THICKNESS = 400.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def simulate(size: int, tilts: int, seed: int = 1) -> tuple[Phantom, np.ndarray, np.ndarray, float]:
    """A phantom and its noisy projections ``(t, size, size)`` at known shifts."""
    pixel = FIELD_ANGSTROMS / size
    rng = np.random.default_rng(seed)
    phantom = make_phantom(
        rng,
        half_extent_angstroms=FIELD_ANGSTROMS * 0.75,
        thickness_angstroms=THICKNESS,
        particles_per_square_micrometre=1500,
        vesicles_per_square_micrometre=20,
        gold_beads_per_square_micrometre=0,
    )
    angles = np.linspace(-60.0, 60.0, tilts)
    shifts = rng.normal(0.0, 60.0, (tilts, 2))
    shifts[np.argmin(np.abs(angles))] = 0.0  # alignment's reference: the absolute centre is not knowable
    images = np.stack(
        [
            project_phantom(
                phantom,
                tilt_degrees=float(a),
                tilt_axis_angle_degrees=AXIS,
                shape=(size, size),
                pixel_size_angstroms=pixel,
                specimen_shift_angstroms=(float(s[0]), float(s[1])),
                voltage_kv=300.0,
                inelastic_mean_free_path_angstroms=3000.0,
                texture_radians=0.0,
                rng=rng,
            )[0]
            for a, s in zip(angles, shifts, strict=True)
        ]
    )
    images += rng.normal(0.0, float(images.std()), images.shape).astype(np.float32)
    return phantom, images, angles, pixel


def reference(phantom: Phantom, shape: tuple[int, int, int], voxel: float, oversample: int = 4) -> np.ndarray:
    """The phantom in the tomogram's frame (tilt axis along y), box-averaged."""
    angle = math.radians(90.0 - AXIS)
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rotated = dataclasses.replace(phantom, centers_angstroms=phantom.centers_angstroms @ rotation.T)
    d, h, w = shape
    fine = render_volume(rotated, (d * oversample, h * oversample, w * oversample), voxel / oversample)
    binned: np.ndarray = fine.reshape(d, oversample, h, oversample, w, oversample).mean(axis=(1, 3, 5))
    return binned


def mean_fsc(volume: np.ndarray, truth: np.ndarray) -> float:
    """Mean FSC over shells 1-10."""
    fsc = fourier_shell_correlation(torch.tensor(volume), torch.tensor(truth)).numpy()
    return float(fsc[1:11].mean())


def astra_fbp(aligned: np.ndarray, angles_degrees: np.ndarray, depth: int) -> np.ndarray:
    """ASTRA's CPU FBP, one 2-D slice (x, z) per row along the tilt axis: ``(d, h, w)``."""
    import astra

    _, h, w = aligned.shape
    volume_geometry = astra.create_vol_geom(depth, w)
    projection_geometry = astra.create_proj_geom("parallel", 1.0, w, np.radians(angles_degrees))
    projector = astra.create_projector("linear", projection_geometry, volume_geometry)
    out = np.empty((depth, h, w), np.float32)
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


def _timed(device: torch.device, run: Callable[[], np.ndarray], repeats: int = 1) -> tuple[np.ndarray, float]:
    """The result and the fastest of ``repeats`` runs in seconds (the CPU is shared: noisy)."""
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = run()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return out, best


def compare_with_astra(device: torch.device) -> None:
    """Ours (filtered), torch-tomogram's WBP and ASTRA's FBP on one aligned stack; the issue's target."""
    phantom, images, angles, pixel = simulate(512, 41)
    result = reconstruct_builtin(
        images, angles, ReconstructionParameters(pixel, AXIS, 4, 2 * THICKNESS), device
    )
    aligned = result.aligned_stack
    depth = result.tomogram.shape[0]
    truth = reference(phantom, result.tomogram.shape, result.pixel_spacing_angstroms)
    stack = torch.from_numpy(aligned).to(device)
    tilts = torch.from_numpy(angles).float().to(device)
    ours, ours_seconds = _timed(
        device, lambda: filtered_back_projection(stack, tilts, depth).cpu().numpy(), 3
    )
    library, library_seconds = _timed(
        device, lambda: weighted_back_projection(stack, tilts, depth, 128).cpu().numpy()
    )
    theirs, astra_seconds = _timed(device, lambda: astra_fbp(aligned, angles, depth), 3)
    # ASTRA's angle and axis conventions differ from ours: score every mirror and keep the best
    candidates = {
        "as is": theirs,
        "z flipped": theirs[::-1],
        "x flipped": theirs[:, :, ::-1],
        "both": theirs[::-1, :, ::-1],
    }
    scores = {name: mean_fsc(np.ascontiguousarray(v), truth) for name, v in candidates.items()}
    best = max(scores, key=lambda k: scores[k])
    voxel = result.pixel_spacing_angstroms
    fsc, library_fsc, astra_fsc = mean_fsc(ours, truth), mean_fsc(library, truth), scores[best]
    ratio = ours_seconds / astra_seconds
    print(f"aligned stack {aligned.shape}, tomogram {result.tomogram.shape} at {voxel:g} Å")
    print(f"  ours  (filtered BP, {device.type})        : {ours_seconds:7.3f} s  FSC {fsc:.3f}")
    print(f"  library (torch-tomogram WBP, {device.type}): {library_seconds:7.3f} s  FSC {library_fsc:.3f}")
    print(f"  ASTRA (FBP, CPU, 2-D slices)        : {astra_seconds:7.3f} s  FSC {astra_fsc:.3f} ({best})")
    print(f"  value scale ours / ASTRA (std): {ours.std() / candidates[best].std():.2f}")
    met = ratio <= 1.0 and fsc >= astra_fsc
    print(
        f"  time ratio ours / ASTRA: {ratio:.3f}, library / ASTRA: {library_seconds / astra_seconds:.2f}"
        f"; target <= 1.0x at FSC >= ASTRA's: {'met' if met else 'not met'}"
    )


def per_series(device: torch.device, sizes: list[int]) -> None:
    for size in sizes:
        _, images, angles, pixel = simulate(size, 41)
        parameters = ReconstructionParameters(pixel, AXIS, 4, 2 * THICKNESS)
        reconstruct_builtin(images[:5], angles[:5], parameters, device)  # warm-up (plans, kernels)
        _sync(device)
        start = time.perf_counter()
        result = reconstruct_builtin(images, angles, parameters, device)
        _sync(device)
        seconds = time.perf_counter() - start
        print(f"{size}² x 41 tilts, binning 4 -> {result.tomogram.shape}: {seconds:7.2f} s per tilt series")


def denoising(device: torch.device, edges: list[int], patch: int, padding: int) -> None:
    model = load_topaz_model("unet-3d-10a", device)
    rng = np.random.default_rng(0)
    for edge in edges:
        volume = rng.standard_normal((edge, edge, edge)).astype(np.float32)
        _sync(device)
        start = time.perf_counter()
        denoise_volume(volume, model, device, patch, padding)
        _sync(device)
        seconds = time.perf_counter() - start
        print(f"Topaz unet-3d-10a {edge}³ (patch {patch}, padding {padding}): {seconds:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="512,1024", help="micrograph edges, comma-separated")
    parser.add_argument("--volumes", default="64,128", help="denoised volume edges, comma-separated")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--padding", type=int, default=16)
    parser.add_argument("--no-astra", action="store_true")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    torch.set_num_threads(torch.get_num_threads())
    print(f"device {device}, {torch.get_num_threads()} threads")
    if not arguments.no_astra:
        compare_with_astra(device)
    per_series(device, [int(s) for s in arguments.sizes.split(",") if s])
    denoising(device, [int(v) for v in arguments.volumes.split(",") if v], arguments.patch, arguments.padding)


if __name__ == "__main__":
    main()
