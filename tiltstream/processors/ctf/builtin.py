"""The builtin backend: tiltstream's own fit (default) or teamtomo's torch-ctf-estimation, on CUDA or CPU.

The library stays the reference (``method="torch-ctf-estimation"``, the benchmark and a test compare
the two) and fits the sample thickness, which the own fit does not.

Convention trap (torch-ctf-estimation 0.6): the 2D result's ``astigmatism`` is the half difference
``(defocus_u - defocus_v) / 2`` — the convention of ``torch_ctf.calculate_ctf_2d`` — while its
``defocus_u``/``defocus_v`` are computed as mean +/- astigmatism / 2. So the defoci are rebuilt here
as mean +/- astigmatism (checked against synthetic images of known astigmatism in the tests).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch_ctf_estimation as tce
from torch_ctf import calculate_ctf_2d

from tiltstream.processors.ctf.fast_fit import estimate_ctf_fast
from tiltstream.processors.ctf.fit_resolution import diagnostic_image, fit_resolution_angstroms, full_spectrum
from tiltstream.processors.ctf.result import CtfParameters, CtfResult

__all__ = ["estimate_ctf_builtin"]


def estimate_ctf_builtin(
    micrograph: np.ndarray,  # (h, w)
    parameters: CtfParameters,
    device: torch.device,
    *,
    estimate_thickness: bool = False,
    method: Literal["tiltstream", "torch-ctf-estimation"] = "tiltstream",
) -> CtfResult:
    """Fit defocus, astigmatism (and optionally thickness: the library's fit) of ``micrograph``."""
    if method == "tiltstream" and not estimate_thickness:
        return estimate_ctf_fast(micrograph, parameters, device)
    return _estimate_ctf_library(micrograph, parameters, device, estimate_thickness=estimate_thickness)


def _estimate_ctf_library(
    micrograph: np.ndarray,  # (h, w)
    parameters: CtfParameters,
    device: torch.device,
    *,
    estimate_thickness: bool,
) -> CtfResult:
    """torch-ctf-estimation's fit."""
    p = parameters
    spacing = max(p.pixel_size_angstroms, min(3.0, p.max_resolution_angstroms / 2.2))
    short_side = int(min(micrograph.shape) * p.pixel_size_angstroms / spacing)
    box = min(p.box_size_pixels, short_side - short_side % 2)
    optical = tce.OpticalParams(
        pixel_spacing_angstroms=p.pixel_size_angstroms,
        voltage_kev=p.voltage_kv,
        spherical_aberration_mm=p.spherical_aberration_mm,
        amplitude_contrast_fraction=p.amplitude_contrast,
        target_pixel_spacing_angstroms=spacing,
    )
    fitting = tce.CTFFittingParams(
        defocus_grid_resolution=(1, 1, 1),
        frequency_fit_range_angstroms=(p.min_resolution_angstroms, p.max_resolution_angstroms),
        defocus_range_microns=(p.min_defocus_angstroms / 1e4, p.max_defocus_angstroms / 1e4),
        patch_sidelength=box,
    )
    image = torch.from_numpy(np.array(micrograph, dtype=np.float32))
    thickness = None
    if estimate_thickness:
        full = tce.estimate_ctf_and_thickness(image, optical, fitting, tce.ThicknessParams(), device=device)
        mean_ps, result1d, result2d = full.mean_ps, full.result1d, full.result2d
        joint, first = full.thickness_joint, full.thickness1d
        if isinstance(joint, tce.Thickness2DResults):
            thickness = float(joint.mean_thickness)
        elif joint is not None:
            thickness = float(joint.thickness_angstroms)
        elif first is not None:
            thickness = float(first.thickness_angstroms)
    else:
        mean_ps, result1d, result2d = tce.estimate_ctf(image, optical, fitting, device=device)
    if result2d.defocus_u is None or result2d.defocus_v is None:
        mean_microns = float(result2d.defocus_model.data.mean())
    else:
        mean_microns = (result2d.defocus_u + result2d.defocus_v) / 2
    half_microns = abs(float(result2d.astigmatism or 0.0))
    angle = float(result2d.astigmatism_angle or 0.0)
    n = int(mean_ps.shape[-2])
    with torch.no_grad():
        ctf = calculate_ctf_2d(
            defocus=mean_microns,
            astigmatism=half_microns,
            astigmatism_angle=angle,
            voltage=p.voltage_kv,
            spherical_aberration=p.spherical_aberration_mm,
            amplitude_contrast=p.amplitude_contrast,
            phase_shift=0.0,
            pixel_size=spacing,
            image_shape=(n, n),
            rfft=False,
            fftshift=True,
        )
    model = ctf.reshape(n, n).cpu().numpy() ** 2  # (n, n) centred
    spectrum = full_spectrum(mean_ps.detach().cpu().numpy())  # (n, n) centred
    score = result2d.cross_correlation_final
    if score is None:
        score = result1d.cross_correlation_final
    return CtfResult(
        defocus_u_angstroms=(mean_microns + half_microns) * 1e4,
        defocus_v_angstroms=(mean_microns - half_microns) * 1e4,
        astigmatism_angle_degrees=angle,
        fit_resolution_angstroms=fit_resolution_angstroms(
            spectrum, model, spacing, p.min_resolution_angstroms
        ),
        fit_score=float(np.clip(score or 0.0, 0.0, 1.0)),
        backend=f"torch-ctf-estimation {tce.__version__}",
        box_size_pixels=n,
        phase_shift_degrees=None,
        sample_thickness_angstroms=thickness,
        diagnostic=diagnostic_image(spectrum, model),
    )
