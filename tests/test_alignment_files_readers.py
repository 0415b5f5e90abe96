"""Our ``.xf``, ``.tlt`` and ``.aln`` read by an independent reader: teamtomo's ``cryoet-alignment``.

cryoet-alignment (PyPI) reads IMOD and AreTomo alignments and converts between them; its AreTomo ->
IMOD conversion of our ``.aln`` must give our own ``.xf``/``.tlt`` back within the files' rounding,
including a series with dark sections left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryoet_alignment.io.aretomo3 import AreTomo3ALN
from cryoet_alignment.io.cryoet_data_portal import Alignment
from cryoet_alignment.io.imod import ImodTLT, ImodXF

from tiltstream.processors.reconstruct.alignment_files import (
    AlnFile,
    parse_aln,
    write_aln,
    write_tlt,
    write_xf,
)

RAW_TILTS = np.linspace(-60.0, 60.0, 21)
DARK = (0, 20)


def _alignment(seed: int, axis_degrees: float) -> tuple[AlnFile, np.ndarray]:
    rng = np.random.default_rng(seed)
    kept = np.array([i for i in range(len(RAW_TILTS)) if i not in DARK])
    shifts = rng.normal(0.0, 25.0, (len(kept), 2))
    content = AlnFile(
        section=kept,
        tilt_axis_angle_degrees=np.full(len(kept), axis_degrees),
        shifts_xy_pixels=shifts,
        tilt_angles_degrees=RAW_TILTS[kept] + 0.37,
        raw_size=(512, 480, len(RAW_TILTS)),
        dark_sections=DARK,
        alpha_offset_degrees=0.37,
        dark_tilt_angles_degrees=tuple(float(RAW_TILTS[i]) for i in DARK),
    )
    return content, kept


@pytest.mark.parametrize(("seed", "axis_degrees"), [(1, 85.3), (2, -94.7), (3, 176.2)])
def test_cryoet_alignment_converts_our_aln_into_our_xf_and_tlt(
    tmp_path: Path, seed: int, axis_degrees: float
) -> None:
    content, kept = _alignment(seed, axis_degrees)
    write_aln(tmp_path / "TS.aln", content)
    write_xf(tmp_path / "TS.xf", content.shifts_xy_pixels, axis_degrees)
    write_tlt(tmp_path / "TS.tlt", content.tilt_angles_degrees)

    aln = AreTomo3ALN.from_file(tmp_path / "TS.aln")
    assert aln.RawSize == (512, 480, len(RAW_TILTS))
    assert [d.section_idx for d in aln.DarkFrames] == list(DARK)
    assert [d.angle for d in aln.DarkFrames] == pytest.approx([RAW_TILTS[i] for i in DARK])
    assert aln.AlphaOffset == pytest.approx(0.37)
    assert len(aln.GlobalAlignments) == len(kept)
    imod = Alignment.from_aretomo3(aln).to_imod(ts_size=aln.RawSize)
    theirs_xf = imod.xf.numpy()[kept]  # (t, 6): they write identity rows for the dark sections
    theirs_tlt = imod.tlt.numpy()[kept]

    ours_xf = ImodXF.from_file(tmp_path / "TS.xf").numpy()
    ours_tlt = ImodTLT.from_file(tmp_path / "TS.tlt").numpy()
    assert ours_xf.shape == theirs_xf.shape
    assert np.allclose(ours_xf[:, :4], theirs_xf[:, :4], atol=1e-4)  # ROT is written to 1e-4 degrees
    assert np.allclose(ours_xf[:, 4:], theirs_xf[:, 4:], atol=0.01)  # shifts to 1e-3 pixels
    assert np.allclose(ours_tlt, theirs_tlt, atol=0.01)
    assert np.allclose(ours_tlt, content.tilt_angles_degrees, atol=0.005)


def test_their_reading_of_our_aln_matches_ours(tmp_path: Path) -> None:
    content, _ = _alignment(4, 85.3)
    write_aln(tmp_path / "TS.aln", content)
    ours = parse_aln((tmp_path / "TS.aln").read_text())
    theirs = AreTomo3ALN.from_file(tmp_path / "TS.aln").get_global_alignments("pandas")
    assert np.allclose(theirs["rot"], ours.tilt_axis_angle_degrees - 90.0)
    assert np.allclose(-theirs[["tx", "ty"]].to_numpy(), content.shifts_xy_pixels, atol=0.001)
    assert np.allclose(theirs["tilt"], content.tilt_angles_degrees, atol=0.005)
    assert ours.dark_tilt_angles_degrees == pytest.approx(content.dark_tilt_angles_degrees)
