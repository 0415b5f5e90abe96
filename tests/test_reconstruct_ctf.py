"""CTF correction in the builtin reconstruction: phase flipping with the tilted specimen's defocus gradient.

The simulator's tilted CTF (``connectors/simulator/tilted_ctf.py``, defocus 4 µm, every band of the
tilted slab at its own defocus) is applied to the projections; the same series is reconstructed with
and without correction, and the corrected tomogram's FSC to the phantom must be higher beyond the
CTF's first zero (~28 Å at 4 µm; 10 Å voxels, Nyquist 20 Å), where the uncorrected one inverts contrast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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

from tiltstream.connectors.simulator.tilted_ctf import specimen_height_angstroms
from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
from tiltstream.processors.reconstruct.ctf_correction import specimen_heights_angstroms
from tiltstream.processors.runtime import Job

DEFOCUS = 40000.0


@pytest.fixture(scope="module")
def series() -> SimulatedSeries:
    return simulate_series(
        seed=5, size_pixels=128, tilt_count=31, shift_sd_angstroms=20.0, noise=0.3, defocus_angstroms=DEFOCUS
    )


def _reconstruct(series: SimulatedSeries, data: Path, *, correct: bool) -> tuple[np.ndarray, dict[str, Any]]:
    request = reconstruction_request(series, data, binning=2, thickness_angstroms=640.0)
    settings = ReconstructionSettings(
        data_roots={"processed": data / "processed"},
        device="cpu",
        tile_sidelength_pixels=64,
        correct_ctf=correct,
        relion_project=False,
        depth_from_thickness=False,  # both volumes at the same depth, compared with one reference
    )
    processor = ReconstructionProcessor(settings)
    (output,) = processor.process(Job(request, "t", 0, 0, 1), processor.load(request))
    with mrcfile.open(data / "processed" / output.value["tomogram"]["path"]) as mrc:
        return np.array(mrc.data), output.value


def _fsc(volume: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return fourier_shell_correlation(torch.tensor(volume), torch.tensor(reference)).numpy()


def test_phase_flipping_raises_the_fsc_to_the_phantom(series: SimulatedSeries, tmp_path: Path) -> None:
    corrected, event = _reconstruct(series, tmp_path / "a", correct=True)
    plain, plain_event = _reconstruct(series, tmp_path / "b", correct=False)
    assert event["backend"].endswith("+ phase flip")
    assert not plain_event["backend"].endswith("+ phase flip")
    reference = phantom_in_tomogram_frame(series, corrected.shape, event["pixel_spacing_angstroms"])
    fsc_corrected, fsc_plain = _fsc(corrected, reference), _fsc(plain, reference)
    size = corrected.shape[-1]
    first_zero = math.sqrt(0.0197 * DEFOCUS)  # Å, the CTF's first zero at 300 kV
    beyond = slice(math.ceil(size * event["pixel_spacing_angstroms"] / first_zero), size // 2)
    gain = float(fsc_corrected[beyond].mean() - fsc_plain[beyond].mean())
    mean_corrected, mean_plain = fsc_corrected[beyond].mean(), fsc_plain[beyond].mean()
    print(f"FSC beyond the first zero: corrected {mean_corrected:.3f}, plain {mean_plain:.3f}")
    assert gain > 0.05
    assert float(fsc_corrected[1 : beyond.start].mean()) >= float(fsc_plain[1 : beyond.start].mean()) - 0.02


@pytest.mark.parametrize(("tilt", "axis"), [(45.0, 85.0), (-30.0, 85.0), (60.0, -94.0), (20.0, 10.0)])
def test_the_corrections_defocus_gradient_is_the_simulators_tilted_plane(tilt: float, axis: float) -> None:
    ours = specimen_heights_angstroms((48, 64), 5.0, tilt, axis).numpy()
    simulator = specimen_height_angstroms((48, 64), 5.0, tilt, axis)
    assert np.allclose(ours, simulator, atol=1e-6)
    assert float(np.ptp(ours)) > 100.0
