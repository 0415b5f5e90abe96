"""``geometry.align_images`` resamples all tilts in one ``grid_sample``: it agrees with the library.

The reference is torch-transform-image's ``affine_transform_image_2d``, one image at a time, with the
same matrices (the implementation ``align_images`` had before it was batched).
"""

from __future__ import annotations

import torch
from torch_affine_utils.transforms_2d import R, T
from torch_transform_image import affine_transform_image_2d

from tiltstream.processors.reconstruct.geometry import align_images


def _per_image(images: torch.Tensor, shifts_yx: torch.Tensor, axes_degrees: torch.Tensor) -> torch.Tensor:
    t, h, w = images.shape
    centre = torch.tensor([h // 2, w // 2], dtype=torch.float32)
    matrices = T(centre - shifts_yx) @ R(axes_degrees, yx=True) @ T(-centre)  # (t, 3, 3)
    means = images.mean(dim=(-2, -1), keepdim=True)
    centred = images - means
    aligned = [
        affine_transform_image_2d(centred[i], matrices=matrices[i], interpolation="bicubic", yx_matrices=True)
        for i in range(t)
    ]
    return torch.stack(aligned) + means


def test_batched_resampling_agrees_with_the_per_image_library_path() -> None:
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(7, 48, 40, generator=generator) + 5.0  # (t, h, w), a mean to fill with
    shifts = torch.randn(7, 2, generator=generator) * 4.0  # (t, 2) pixels
    axes = torch.randn(7, generator=generator) * 10.0 - 5.0  # (t,) degrees
    batched = align_images(images, shifts, axes)
    reference = _per_image(images, shifts, axes)
    assert batched.shape == images.shape
    assert torch.allclose(batched, reference, atol=1e-4)
    # the fill: corners exposed by the rotation hold each image's mean
    exposed = (reference - images.mean(dim=(-2, -1), keepdim=True)).abs() < 1e-6
    assert exposed.sum() > 0
    # a single angle for all tilts (the alignment's global axis) and a zero one
    assert torch.allclose(
        align_images(images, shifts, 4.0), _per_image(images, shifts, torch.full((7,), 4.0)), atol=1e-4
    )
    assert torch.allclose(align_images(images, torch.zeros(7, 2), 0.0), images, atol=1e-4)


def test_a_shift_moves_the_image_content() -> None:
    image = torch.zeros(1, 32, 32)
    image[0, 10, 12] = 1.0
    moved = align_images(image, torch.tensor([[3.0, -2.0]]), 0.0)  # aligned(p) = raw(p - shift)
    assert tuple(int(i) for i in torch.nonzero(moved[0] == moved[0].max())[0]) == (13, 10)
