"""The specimen's thickness from the tomogram's z profile, and the depth the volume is cut to."""

from __future__ import annotations

import numpy as np
import pytest

from tiltstream.processors.reconstruct.thickness import crop_to_slab, estimate_slab


def _volume(depth: int, start: int, stop: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    volume = rng.normal(0.0, 0.2, (depth, 32, 32))
    volume[start:stop] += rng.normal(0.0, 1.0, (stop - start, 32, 32))
    return volume.astype(np.float32)


@pytest.mark.parametrize(("start", "stop"), [(30, 50), (10, 24), (45, 75)])
def test_the_slab_is_found_where_the_specimen_is(start: int, stop: int) -> None:
    slab = estimate_slab(_volume(80, start, stop), 10.0)
    assert slab is not None
    assert (slab.start, slab.stop) == (start, stop)
    assert slab.thickness_angstroms == pytest.approx((stop - start) * 10.0)


def test_a_flat_profile_gives_no_estimate() -> None:
    assert estimate_slab(np.random.default_rng(1).normal(size=(40, 16, 16)), 10.0) is None
    assert estimate_slab(np.zeros((40, 16, 16)), 10.0) is None


def test_the_cut_keeps_the_centre_and_the_slab_with_its_margin() -> None:
    volume = _volume(80, 45, 75)
    slab = estimate_slab(volume, 10.0)
    assert slab is not None
    cut = crop_to_slab(volume, slab, margin_fraction=0.1)
    # slab 45..75 with 3 slices of margin: 35 slices above the centre (40) -> 2 x 38, capped at 80
    assert cut.shape[0] == 76
    assert np.array_equal(cut, volume[2:78])
    thin = _volume(80, 36, 44)
    cut = crop_to_slab(thin, estimate_slab(thin, 10.0), margin_fraction=0.25)  # type: ignore[arg-type]
    assert cut.shape[0] == 12
    assert np.array_equal(cut, thin[34:46])
