"""Resampling tilt images into the aligned frame: shifted, then rotated so the tilt axis runs along y.

Conventions (checked against the simulator's analytic phantom in the tests):

* ``tilt_axis_angle_degrees`` in events is measured from the image x axis (the simulator's and the
  schema's convention); AreTomo's ``ROT`` and torch-tiltxcorr's angle are measured from the y axis:
  ``axis_from_y = axis_from_x - 90``.
* an alignment shift ``(y, x)`` in pixels is the translation applied to a raw image to align it:
  ``aligned(p) = raw(p - shift)``; the specimen's displacement in the raw image is its negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_affine_utils.transforms_2d import R, T

__all__ = ["align_images", "axis_from_y_degrees"]


def axis_from_y_degrees(axis_from_x_degrees: float) -> float:
    """The tilt axis angle from the image y axis (AreTomo ``ROT``, torch-tiltxcorr) in degrees."""
    return axis_from_x_degrees - 90.0


def align_images(
    images: torch.Tensor,  # (t, h, w)
    shifts_yx_pixels: torch.Tensor,  # (t, 2)
    axis_from_y_degrees: torch.Tensor | float,  # () or (t,)
) -> torch.Tensor:  # (t, h, w)
    """Shift each image by its alignment shift, then rotate it so the tilt axis runs along y.

    All tilts are resampled in one ``grid_sample`` call (bicubic, the coordinates of
    torch-transform-image's ``affine_transform_image_2d``, which samples one image at a time).
    Pixels that come from outside the raw image are filled with each image's mean, so that the
    corners a rotation exposes do not add edges to the reconstruction.
    """
    t, h, w = images.shape
    device = images.device
    centre = torch.tensor([h // 2, w // 2], dtype=torch.float32, device=device)
    angles = torch.as_tensor(axis_from_y_degrees, dtype=torch.float32, device=device).expand(t)
    # output pixel q samples the raw image at  c + R(axis) (q - c) - shift
    matrices = T(centre - shifts_yx_pixels.float(), device=device) @ R(angles, yx=True, device=device)
    matrices = matrices @ T(-centre, device=device)  # (t, 3, 3)
    rows, columns = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    pixels = torch.stack([rows, columns, torch.ones_like(rows)], dim=-1)  # (h, w, 3) yx1
    sampled = torch.einsum("tij,hwj->thwi", matrices[:, :2, :], pixels)  # (t, h, w, 2) yx
    extent = torch.tensor([h - 1, w - 1], dtype=torch.float32, device=device)
    grid = (sampled / (0.5 * extent) - 1.0).flip(-1)  # (t, h, w, 2) xy in [-1, 1], align_corners
    means = images.mean(dim=(-2, -1), keepdim=True)  # (t, 1, 1)
    centred = (images - means).float()[:, None]  # (t, 1, h, w)
    aligned = F.grid_sample(centred, grid, mode="bicubic", padding_mode="border", align_corners=True)
    inside = ((sampled >= 0) & (sampled <= extent)).all(dim=-1)  # (t, h, w)
    return torch.where(inside, aligned[:, 0], 0.0) + means
