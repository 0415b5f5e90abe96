"""From patch residuals to a smooth deformation field: penalised least squares, then cubic splines.

Each patch's residual trajectory is noisy (a patch holds a few percent of the frame's electrons) and
now and then wrong (a patch of plain ice locks onto noise, with a large variance to say so). The
field is the ``s`` that minimises, per axis,

    sum w (s - r)**2 / v  +  |D_t² s|**2 / kt**2  +  (|D_y² s|**2 + |D_x² s|**2) / ks**2

over every patch and frame at once (one dense solve of ``patches x frames`` unknowns): ``v`` each
residual's shot-noise variance, ``kt`` the expected second difference in time (px per frame²), ``ks``
across neighbouring patches (px), and ``w`` a robust weight (Cauchy, refitted once) that takes out a
patch far from its neighbours beyond what its variance explains. Between and beyond the patch
centres the field follows natural cubic splines (linear beyond the outermost centres).
"""

from __future__ import annotations

import numpy as np
import scipy.interpolate
import scipy.sparse
import scipy.sparse.linalg
import torch

from tiltstream.processors.motioncorr.local_shifts import LocalShifts

__all__ = ["smooth_local_shifts", "spline_weights", "temporal_basis"]

#: A residual this many of its standard deviations from the smooth fit has half the weight.
ROBUST_SCALE = 3.0


def _second_differences(n: int) -> scipy.sparse.csr_array:
    """``(n-2, n)`` second differences (no rows below three points)."""
    if n < 3:
        return scipy.sparse.csr_array((0, n))
    return scipy.sparse.diags_array([1.0, -2.0, 1.0], offsets=[0, 1, 2], shape=(n - 2, n), format="csr")


def temporal_basis(frames: int, degree: int = 3) -> np.ndarray:
    """``(t, k)`` polynomials in time of degree 1..k (k = min(degree, t - 1)), mean zero over the frames,
    orthogonal, each scaled to a largest magnitude of 1 (so that coefficients are displacements)."""
    k = max(0, min(degree, frames - 1))
    time = np.linspace(-1.0, 1.0, frames)[:, None] ** np.arange(1, k + 1)[None, :]  # (t, k)
    time -= time.mean(axis=0)
    basis, _ = np.linalg.qr(time) if k else (time, None)
    scale = np.abs(basis).max(axis=0) if k else np.ones(0)
    return np.asarray(basis / np.where(scale > 0, scale, 1.0))


def _penalty(grid: tuple[int, int, int], curvature_space: float) -> scipy.sparse.csr_array:
    """``(n, n)`` roughness across patches of values ordered (patch row, patch column, term), n = py px k."""
    py, px, k = grid
    eye_y, eye_x, eye_k = (scipy.sparse.eye_array(n, format="csr") for n in grid)
    kron = scipy.sparse.kron
    penalty = scipy.sparse.csr_array((py * px * k, py * px * k))
    for operator in (
        kron(kron(_second_differences(py), eye_x), eye_k),
        kron(kron(eye_y, _second_differences(px)), eye_k),
    ):
        if curvature_space > 0 and operator.shape[0] > 0:
            penalty = penalty + (operator.T @ operator) / curvature_space**2
    return scipy.sparse.csr_array(penalty)


def _solve(
    residual: np.ndarray,  # (P, t) one axis
    precision: np.ndarray,  # (P, t) weight / variance
    basis: np.ndarray,  # (t, k)
    penalty: scipy.sparse.csr_array,  # (P k, P k)
) -> np.ndarray:
    """Coefficients ``(P, k)`` minimising ``sum precision (basis c - residual)**2 + c' penalty c``."""
    normal = np.einsum("tk,pt,tl->pkl", basis, precision, basis)  # (P, k, k) per-patch blocks
    right = np.einsum("tk,pt->pk", basis, precision * residual)  # (P, k)
    system = scipy.sparse.block_diag(list(normal), format="csr") + penalty
    solution = scipy.sparse.linalg.spsolve(system, right.ravel(), use_umfpack=False)
    return np.asarray(solution).reshape(right.shape)


def smooth_local_shifts(
    shifts: LocalShifts, curvature_space_pixels: float, temporal_degree: int = 3
) -> LocalShifts:
    """The patches' residuals as polynomials in time, smooth across patches, outliers down-weighted."""
    py, px, t, _ = shifts.residual_pixels.shape
    basis = temporal_basis(t, temporal_degree)  # (t, k)
    residual = shifts.residual_pixels.reshape(py * px, t, 2).cpu().double().numpy()  # (P, t, 2)
    precision = 1 / np.maximum(shifts.variance_pixels2.reshape(py * px, t, 2).cpu().double().numpy(), 1e-6)
    penalty = _penalty((py, px, basis.shape[1]), curvature_space_pixels)
    field = np.zeros_like(residual)
    for axis in range(2):
        r, p = residual[..., axis], precision[..., axis]
        fit = _solve(r, p, basis, penalty) @ basis.T  # (P, t)
        robust = p / (1 + (r - fit) ** 2 * p / ROBUST_SCALE**2)
        field[..., axis] = _solve(r, robust, basis, penalty) @ basis.T
    return LocalShifts(
        centres_y_pixels=shifts.centres_y_pixels,
        centres_x_pixels=shifts.centres_x_pixels,
        residual_pixels=torch.from_numpy(field.reshape(py, px, t, 2)).to(shifts.residual_pixels),
        variance_pixels2=shifts.variance_pixels2,
    )


def spline_weights(centres: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``(m, n)`` weights: values at ``n`` centres to the natural cubic spline through them at ``m``
    positions (linear beyond the ends; constant for one centre)."""
    n = len(centres)
    if n == 1:
        return torch.ones(len(positions), 1, dtype=torch.float32)
    spline = scipy.interpolate.CubicSpline(
        centres.cpu().numpy(), np.eye(n), bc_type="natural", extrapolate=False
    )
    p = positions.cpu().numpy().astype(np.float64)
    inside = np.clip(p, float(centres[0]), float(centres[-1]))
    weights = spline(inside)  # (m, n)
    slope = spline(inside, 1)
    weights += slope * (p - inside)[:, None]  # linear beyond the outermost centres
    return torch.from_numpy(weights.astype(np.float32))
