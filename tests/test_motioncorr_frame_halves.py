"""The even- and odd-frame sums of motion correction: known answers, the processor's files, MotionCor2.

Known answers: for whole-pixel shifts the Fourier halves are the sums of the rolled even and odd frames,
and (weighted like the micrograph) the two halves add up to the full dose-weighted sum of the
separately implemented ``dose_weighted_sum``. Through the processor a seeded drifting movie's
``_EVN.mrc`` and ``_ODD.mrc`` add up to its micrograph and are aligned to each other.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from motioncorr_fixtures import cpu_settings, movie_event, run_movie, synthetic_movie, write_movie

from tiltstream.processors.motioncorr import MotionCorrectionProcessor
from tiltstream.processors.motioncorr.dose import dose_filters, dose_weighted_sum
from tiltstream.processors.motioncorr.fourier import apply_phase_ramps, spectrum_frequencies
from tiltstream.processors.motioncorr.frame_halves import frame_half_sums, half_spectra, halves_from_spectra

PIXEL = 1.5


def _rolled_and_aligned(shape: tuple[int, int]) -> tuple[np.ndarray, torch.Tensor]:
    """Seeded Poisson frames displaced by whole pixels: the rolled frames, and their aligned spectra."""
    rng = np.random.default_rng(7)
    frames = rng.poisson(3.0, (7, *shape)).astype(np.float32)  # (t, h, w), an odd number of frames
    displacement = rng.integers(-6, 7, (7, 2))  # (t, 2) yx
    rolled = np.stack(
        [np.roll(f, (-dy, -dx), axis=(0, 1)) for f, (dy, dx) in zip(frames, displacement, strict=True)]
    )
    spectra = torch.fft.rfft2(torch.from_numpy(frames))
    ky, kx = spectrum_frequencies(shape, (spectra.shape[-2], spectra.shape[-1]), spectra.device)
    return rolled, apply_phase_ramps(spectra, ky, kx, torch.from_numpy(displacement).float())


@pytest.mark.parametrize("shape", [(64, 80), (63, 81)])
def test_halves_of_whole_pixel_shifts_are_the_rolled_even_and_odd_frames(shape: tuple[int, int]) -> None:
    rolled, aligned = _rolled_and_aligned(shape)
    before = aligned.clone()
    even, odd = frame_half_sums(aligned, shape)
    np.testing.assert_allclose(even.numpy(), rolled[0::2].sum(0), atol=2e-3)  # frames 0, 2, 4, 6
    np.testing.assert_allclose(odd.numpy(), rolled[1::2].sum(0), atol=2e-3)  # frames 1, 3, 5
    assert torch.equal(aligned, before)  # the spectra are read, not changed


def test_dose_weighted_halves_add_up_to_the_dose_weighted_sum() -> None:
    shape = (64, 80)
    rolled, aligned = _rolled_and_aligned(shape)
    q, norm = dose_filters(len(rolled), shape, 1.2, 0.8, 20.0, 200.0)
    even, odd = frame_half_sums(aligned * q, shape, norm)
    full = dose_weighted_sum(torch.from_numpy(rolled), 1.2, 0.8, 20.0, 200.0).numpy()
    np.testing.assert_allclose((even + odd).numpy(), full, atol=2e-3)
    plain_even, _ = frame_half_sums(aligned, shape)
    assert not np.allclose(even.numpy(), plain_even.numpy(), atol=0.1)  # the weighting did something
    # each half holds its frames' dose: about 4/7 and 3/7 of the full sum's mean
    assert float(even.mean()) == pytest.approx(full.mean() * 4 / 7, rel=0.05)


def test_halves_added_chunk_by_chunk_are_the_halves_of_the_whole() -> None:
    """A path that aligns frames in chunks (the local one) adds each chunk's half spectra."""
    shape = (64, 80)
    _, aligned = _rolled_and_aligned(shape)
    q, norm = dose_filters(len(aligned), shape, 1.2, 0.8, 20.0, 200.0)
    even = torch.zeros_like(aligned[0])
    odd = torch.zeros_like(aligned[0])
    for start in (0, 3, 5):  # chunks of 3, 2 and 2 frames: odd offsets swap the parity
        chunk = slice(start, {0: 3, 3: 5, 5: 7}[start])
        chunk_even, chunk_odd = half_spectra(aligned[chunk] * q[chunk], start)
        even += chunk_even
        odd += chunk_odd
    whole = frame_half_sums(aligned * q, shape, norm)
    for part, expected in zip(halves_from_spectra(even, odd, shape, norm), whole, strict=True):
        np.testing.assert_allclose(part.numpy(), expected.numpy(), atol=1e-3)


def test_too_few_frames_or_a_negative_first_frame_are_refused() -> None:
    spectra = torch.zeros(1, 8, 5, dtype=torch.complex64)
    with pytest.raises(ValueError, match="at least two"):
        frame_half_sums(spectra, (8, 8))
    with pytest.raises(ValueError, match="first frame"):
        half_spectra(torch.zeros(2, 8, 5, dtype=torch.complex64), -1)


def _read(root: Path, path: dict[str, str] | None) -> np.ndarray:
    assert path is not None
    with mrcfile.open(root / path["path"]) as mrc:
        assert mrc.voxel_size.x == pytest.approx(PIXEL)
        return np.asarray(mrc.data, dtype=np.float64)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_processor_writes_aligned_halves_that_add_up_to_the_micrograph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    movie, _ = synthetic_movie(2, size=256, frames=10, step_pixels=2.0, counts=4.0, contrast=0.3)
    write_movie(tmp_path / "raw" / "cm1" / "Position_1_004.tiff", movie, PIXEL)
    event = run_movie(
        MotionCorrectionProcessor(cpu_settings(tmp_path)), movie_event("cm1/Position_1_004.tiff", movie)
    )
    processed = tmp_path / "processed"
    assert event["micrograph_even"]["path"].endswith("/Position_1_004_EVN.mrc")
    assert event["micrograph_odd"]["path"].endswith("/Position_1_004_ODD.mrc")
    even, odd = _read(processed, event["micrograph_even"]), _read(processed, event["micrograph_odd"])
    micrograph = _read(processed, event["micrograph"])
    assert event["dose_weighted"]
    np.testing.assert_allclose(even + odd, micrograph, atol=1e-3 * np.abs(micrograph).max())
    # aligned: the halves agree far better than the raw (unshifted) sums of the same frames do
    aligned = _correlation(even, odd)
    raw = _correlation(movie[0::2].sum(0).astype(float), movie[1::2].sum(0).astype(float))
    print(f"even-odd correlation aligned {aligned:.3f}, unaligned {raw:.3f}")
    assert aligned > 0.5
    assert aligned > raw + 0.2


@pytest.mark.parametrize(
    ("service", "session", "written"),
    [(False, None, False), (True, False, False), (False, True, True), (True, None, True)],
)
def test_the_sessions_choice_wins_over_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: bool, session: bool | None, written: bool
) -> None:
    movie, _ = synthetic_movie(3, size=64, frames=4)
    write_movie(tmp_path / "raw" / "m.tiff", movie, PIXEL)
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path, frame_halves=service))
    event = run_movie(processor, movie_event("m.tiff", movie) | {"frame_halves": session})
    assert (event["micrograph_even"] is not None) == written
    assert (event["micrograph_odd"] is not None) == written
    assert bool(list((tmp_path / "processed").rglob("*_EVN.mrc"))) == written


# A stand-in for MotionCor2 that follows its documented interface: it refuses a command without
# -InTiff/-OutMrc/-LogDir, prints the per-frame shift lines, writes the plain sum to -OutMrc, the
# dose-weighted one as <stem>_DW.mrc when given -FmDose and, with -SplitSum 1, the even- and odd-frame
# sums as <stem>_EVN.mrc and <stem>_ODD.mrc (here constant images 1, 2, 3 and 4 to tell them apart).
STAND_IN = """\
import sys
from pathlib import Path

import mrcfile
import numpy as np

args = sys.argv[1:]
options = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("-")}
for needed in ("-InTiff", "-OutMrc", "-LogDir", "-PixSize"):
    if needed not in options:
        sys.exit(f"missing {needed}")
out = Path(options["-OutMrc"])
def write(path, value):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.full((32, 32), value, dtype=np.float32))
        mrc.voxel_size = float(options["-PixSize"])
write(out, 1.0)
if "-FmDose" in options:
    write(out.with_name(out.stem + "_DW.mrc"), 2.0)
if options.get("-SplitSum") == "1":
    write(out.with_name(out.stem + "_EVN.mrc"), 3.0)
    write(out.with_name(out.stem + "_ODD.mrc"), 4.0)
print("MotionCor2 version 1.6.4")
for frame in range(1, 5):
    print(f"...... Frame ({frame:3d}) shift:    {-0.5 * frame:.2f}      {0.25 * frame:.2f}")
"""


def _stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "MotionCor2"
    script.write_text(f"#!{sys.executable}\n{STAND_IN}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize("halves", [True, False])
def test_motioncor2_split_sums_are_picked_up(tmp_path: Path, halves: bool) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "movie.tiff").write_bytes(b"")  # MotionCor2 reads it, not us
    settings = cpu_settings(
        tmp_path, backend="motioncor2", motioncor_executable=str(_stand_in(tmp_path)), frame_halves=halves
    )
    value = movie_event("movie.tiff", np.zeros((4, 32, 32)))
    event = run_movie(MotionCorrectionProcessor(settings), value)
    processed = tmp_path / "processed"
    assert float(_read(processed, event["micrograph"]).mean()) == 2.0  # the dose-weighted sum
    if not halves:
        assert event["micrograph_even"] is None
        assert event["micrograph_odd"] is None
        return
    assert float(_read(processed, event["micrograph_even"]).mean()) == 3.0
    assert float(_read(processed, event["micrograph_odd"]).mean()) == 4.0


@pytest.mark.parametrize("dose", [0.5, 0.0])
def test_the_local_path_makes_halves_that_add_up_to_its_micrograph(dose: float) -> None:
    """The builtin backend's patch model (resampled in chunks) sums the halves like the micrograph."""
    from tiltstream.processors.motioncorr.builtin import correct_movie_builtin
    from tiltstream.processors.motioncorr.result import MotionParameters

    movie, _ = synthetic_movie(1, size=128, frames=7)
    parameters = MotionParameters(PIXEL, dose, 0.0, 300.0, patches_x=3, patches_y=3)
    result = correct_movie_builtin(movie, None, parameters, torch.device("cpu"))
    micrograph = result.dose_weighted if result.dose_weighted is not None else result.summed
    assert result.even_sum is not None
    assert result.odd_sum is not None
    np.testing.assert_allclose(
        result.even_sum + result.odd_sum, micrograph, atol=1e-4 * np.abs(micrograph).max()
    )
    assert float(result.even_sum.mean()) == pytest.approx(float(micrograph.mean()) * 4 / 7, rel=0.02)
