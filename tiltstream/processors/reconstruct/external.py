"""Reconstruction with AreTomo2/3 (:mod:`.aretomo`), turned into the same result as the builtin backend."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch_fourier_rescale import fourier_rescale_2d

from tiltstream.processors.reconstruct.alignment_files import write_tlt
from tiltstream.processors.reconstruct.aretomo import AreTomoCommand, run_aretomo
from tiltstream.processors.reconstruct.geometry import align_images, axis_from_y_degrees
from tiltstream.processors.reconstruct.result import ReconstructionParameters, ReconstructionResult
from tiltstream.processors.reconstruct.settings import ReconstructionSettings
from tiltstream.processors.runtime.errors import CorruptInputError
from tiltstream.processors.runtime.input_files import open_regular
from tiltstream.processors.runtime.volume_io import read_mrc, write_mrc

__all__ = ["reconstruct_aretomo"]


@contextlib.contextmanager
def _removed_on_failure(folder: Path) -> Iterator[None]:
    """Remove ``folder`` (AreTomo's working files) when the block raises, then let the error go on."""
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def reconstruct_aretomo(
    images: np.ndarray,  # (t, h, w) in tilt order
    tilt_angles_degrees: np.ndarray,  # (t,)
    parameters: ReconstructionParameters,
    request: dict[str, Any],
    settings: ReconstructionSettings,
    stack_path: Path,
) -> ReconstructionResult:
    """Write the stack and angles, run AreTomo, read its tomogram and ``.aln``.

    Tilts AreTomo dropped as dark are absent from the ``.aln``; the aligned stack is resampled here
    from the ``.aln`` (binned like the tomogram), since AreTomo writes none by default. AreTomo works in
    ``stack_path``'s folder, which is removed when the run fails: a failed series leaves no files.
    """
    with _removed_on_failure(stack_path.parent):
        write_mrc(stack_path, images, parameters.pixel_size_angstroms)
        tilt_file = stack_path.with_suffix(".tlt")
        write_tlt(tilt_file, tilt_angles_degrees)
        flavour: Literal["aretomo2", "aretomo3"] = (
            "aretomo3" if settings.backend == "aretomo3" else "aretomo2"
        )
        command = AreTomoCommand(
            executable=settings.aretomo_executable,
            flavour=flavour,
            stack=stack_path,
            tilt_file=tilt_file,
            output=stack_path.with_name("tomogram.mrc"),
            pixel_size_angstroms=parameters.pixel_size_angstroms,
            tilt_axis_angle_degrees=parameters.tilt_axis_angle_degrees,
            binning=parameters.binning,
            thickness_angstroms=parameters.thickness_angstroms,
            voltage_kv=float(request["voltage_kv"]),
            spherical_aberration_mm=float(request["spherical_aberration_mm"]),
            amplitude_contrast=float(request["amplitude_contrast"]),
            gpu=settings.aretomo_gpu,
            refine_tilt_axis=parameters.refine_tilt_axis,
            correct_ctf=settings.aretomo_correct_ctf,
            dark_tolerance=settings.aretomo_dark_tolerance,
            patches=settings.aretomo_patches,
        )
        aln = run_aretomo(command, settings.aretomo_timeout_seconds)
        if np.any(aln.section >= len(images)) or np.any(aln.section < 0):
            raise CorruptInputError(
                f"aln names sections {aln.section.tolist()} of a {len(images)}-tilt stack"
            )
        tomogram = read_mrc(open_regular(command.volume_path), permissive=True)
        binned_pixel = parameters.pixel_size_angstroms * parameters.binning
        with torch.no_grad():
            used = torch.from_numpy(np.ascontiguousarray(images[aln.section], dtype=np.float32))
            if parameters.binning > 1:
                used, _ = fourier_rescale_2d(used, parameters.pixel_size_angstroms, binned_pixel)
            shifts_yx = torch.from_numpy(aln.shifts_xy_pixels[:, ::-1].copy()).float() / parameters.binning
            axes = torch.from_numpy(np.array([axis_from_y_degrees(a) for a in aln.tilt_axis_angle_degrees]))
            aligned = align_images(used, shifts_yx, axes.float())
        return ReconstructionResult(
            tomogram=tomogram,
            aligned_stack=aligned.numpy(),
            tilt_angles_degrees=aln.tilt_angles_degrees,
            shifts_xy_pixels=aln.shifts_xy_pixels,
            tilt_axis_angle_degrees=float(np.mean(aln.tilt_axis_angle_degrees)),
            pixel_spacing_angstroms=binned_pixel,
            tilt_angle_offset_degrees=aln.alpha_offset_degrees,
            axis_agreement=None,
            backend=flavour,
            stack_indices=aln.section,
            dropped={int(i): "dark" for i in sorted(set(range(len(images))) - set(aln.section.tolist()))},
        )
