"""Half tomograms (cryoCARE / noise2noise training pairs) from frame halves or alternating tilts.

The simulated series of ``test_reconstruct_builtin`` (41 tilts, 64 x 64 binned), reconstructed with
``half_tomograms`` on and the depth cut to the estimated slab: the even and the odd tilts' tomograms
lie beside the full one, cut the same way, and each shows the phantom with its own noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from reconstruct_fixtures import (
    SimulatedSeries,
    phantom_in_tomogram_frame,
    reconstruction_request,
    simulate_series,
)
from torch_fourier_shell_correlation import fourier_shell_correlation

from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
from tiltstream.processors.reconstruct.file_names import FILE_SUFFIXES
from tiltstream.processors.reconstruct.filtered_back_projection import filtered_back_projection
from tiltstream.processors.reconstruct.half_map_fsc import crossing_resolution_angstroms, half_map_fsc
from tiltstream.processors.reconstruct.tilt_stack import read_tilt_stack
from tiltstream.processors.runtime import CorruptInputError, DataRoots, Job


def _read(path: Path) -> tuple[np.ndarray, float]:
    with mrcfile.open(path) as mrc:
        return np.asarray(mrc.data, dtype=np.float32), float(mrc.voxel_size.x)


def _mean_fsc(volume: np.ndarray, reference: np.ndarray) -> float:
    fsc = fourier_shell_correlation(torch.tensor(volume), torch.tensor(reference)).numpy()
    return float(fsc[1:11].mean())


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_even_and_odd_tomograms_are_written_beside_the_full_one(tmp_path: Path) -> None:
    series = simulate_series(seed=1)
    request = reconstruction_request(series, tmp_path)
    settings = ReconstructionSettings(
        data_roots={"processed": tmp_path / "processed"},
        device="cpu",
        half_tomograms=True,
        relion_project=False,
    )
    processor = ReconstructionProcessor(settings)
    job = Job(value=request, topic="t", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(request))
    assert output.value["half_tomograms_from"] == "tilts"
    assert output.value["fsc_resolution_angstroms"] is not None
    full_path = tmp_path / "processed" / output.value["tomogram"]["path"]
    stem = str(full_path).removesuffix(FILE_SUFFIXES["tomogram"])
    full, voxel = _read(full_path)
    even, even_voxel = _read(Path(stem + FILE_SUFFIXES["tomogram_even"]))
    odd, odd_voxel = _read(Path(stem + FILE_SUFFIXES["tomogram_odd"]))
    assert even.shape == odd.shape == full.shape
    assert full.shape[0] < 40  # cut to the slab (the request's 800 Å are 40 voxels)
    assert even_voxel == odd_voxel == voxel
    # the halves see the phantom, each with its own noise: less alike than each is to the whole
    reference = phantom_in_tomogram_frame(series, (40, 64, 64), voxel)
    start = (40 - full.shape[0]) // 2  # crop_to_slab cuts symmetrically about the middle
    reference = np.ascontiguousarray(reference[start : start + full.shape[0]])
    scores = {name: _mean_fsc(v, reference) for name, v in (("full", full), ("even", even), ("odd", odd))}
    halves = _correlation(even, odd)
    to_full = min(_correlation(even, full), _correlation(odd, full))
    print(f"mean FSC 1-10 {scores}; even-odd correlation {halves:.3f}, each with the whole >= {to_full:.3f}")
    assert min(scores["even"], scores["odd"]) > 0.4
    assert scores["full"] > max(scores["even"], scores["odd"])
    assert halves < to_full
    # each is the back-projection of its tilts of the aligned stack (rows 0, 2, ... and 1, 3, ...)
    aligned, _ = _read(tmp_path / "processed" / output.value["aligned_stack"]["path"])
    angles = torch.tensor([a["refined_tilt_angle_degrees"] for a in output.value["tilt_alignments"]])
    for first, half in ((0, even), (1, odd)):
        direct = filtered_back_projection(torch.from_numpy(aligned[first::2]), angles[first::2], 40).numpy()
        cut = direct[start : start + full.shape[0]]
        np.testing.assert_allclose(half, cut, atol=1e-4 * float(np.abs(cut).max()))


def _frame_halves_series(noise: float, seed: int = 11) -> tuple[SimulatedSeries, np.ndarray, np.ndarray]:
    """The simulated series with each micrograph the sum of two halves with their own noise (as the
    even and odd frames of a movie are): ``noise`` times the image's std in the sum."""
    clean = simulate_series(seed=1, noise=0.0)
    rng = np.random.default_rng(seed)
    sd = noise * float(clean.images.std()) / np.sqrt(2)
    even = (clean.images / 2 + rng.normal(0, sd, clean.images.shape)).astype(np.float32)
    odd = (clean.images / 2 + rng.normal(0, sd, clean.images.shape)).astype(np.float32)
    return dataclasses.replace(clean, images=even + odd), even, odd


def test_frame_halves_give_half_tomograms_that_add_up_and_a_resolution(tmp_path: Path) -> None:
    series, even_images, odd_images = _frame_halves_series(noise=3.0)
    request = reconstruction_request(series, tmp_path, halves=(even_images, odd_images))
    settings = ReconstructionSettings(
        data_roots={"processed": tmp_path / "processed"}, device="cpu", relion_project=False
    )
    processor = ReconstructionProcessor(settings)
    job = Job(value=request, topic="t", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(request))
    event = output.value
    assert event["half_tomograms_from"] == "frames"
    processed = tmp_path / "processed"
    full, voxel = _read(processed / event["tomogram"]["path"])
    even, _ = _read(processed / event["tomogram_even"]["path"])
    odd, _ = _read(processed / event["tomogram_odd"]["path"])
    assert event["tomogram_even"]["path"].endswith(FILE_SUFFIXES["tomogram_even"])
    # the same binning, alignment and back-projection, all linear: the halves add up to the tomogram
    np.testing.assert_allclose(even + odd, full, atol=1e-5 * float(np.abs(full).max()))
    resolution = event["fsc_resolution_angstroms"]
    assert resolution == half_map_fsc(even, odd, voxel).resolution_angstroms
    reference = phantom_in_tomogram_frame(series, (40, 64, 64), voxel)
    start = (40 - full.shape[0]) // 2
    reference = np.ascontiguousarray(reference[start : start + full.shape[0]])
    truth = half_map_fsc(full, reference, voxel)  # the tomogram against the phantom
    phantom_resolution = crossing_resolution_angstroms(truth.frequencies_per_angstrom, truth.fsc, 0.5)
    print(f"half-map FSC 0.143: {resolution} Å; tomogram against the phantom, 0.5: {phantom_resolution} Å")
    # a real crossing inside the measured band, no finer than the tomogram's own agreement with the truth
    assert 2 * voxel < resolution < 200.0
    assert phantom_resolution is not None
    assert resolution <= phantom_resolution


def test_a_series_with_a_tilt_without_halves_reads_none(tmp_path: Path) -> None:
    series, even_images, odd_images = _frame_halves_series(noise=1.0)
    request = reconstruction_request(series, tmp_path, halves=(even_images, odd_images))
    roots = DataRoots({"processed": tmp_path / "processed"})
    stack = read_tilt_stack(request, roots)
    assert stack.halves is not None
    np.testing.assert_array_equal(stack.halves[0] + stack.halves[1], stack.images)
    assert read_tilt_stack(request, roots, halves=False).halves is None
    request["tilts"][3]["micrograph_odd"] = None  # one tilt corrected without halves
    assert read_tilt_stack(request, roots).halves is None
    request["tilts"][3]["micrograph_odd"] = {"root": "processed", "path": "cm40000-1/motioncorr/gone_ODD.mrc"}
    with pytest.raises(CorruptInputError, match="micrograph_odd of tilt 3 missing"):
        read_tilt_stack(request, roots)
