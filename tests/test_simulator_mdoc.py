"""The simulator's mdocs: mdocfile reads them, and what it reads equals the ground truth."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import mdocfile
import pytest
from source_fixtures import simulate_small

from tiltstream.connectors.simulator import load_ground_truth, tilt_scheme
from tiltstream.connectors.simulator.mdoc_writer import serialem_datetime
from tiltstream.connectors.source import read_mdoc


def test_tilt_schemes() -> None:
    dose_symmetric = tilt_scheme("dose-symmetric")
    assert len(dose_symmetric) == 41
    assert sorted(dose_symmetric) == [-60 + 3.0 * i for i in range(41)]
    assert dose_symmetric[:7] == [0.0, 3.0, 6.0, -3.0, -6.0, 9.0, 12.0]
    assert tilt_scheme("dose-symmetric", max_tilt_degrees=6, group=1) == [0.0, 3.0, -3.0, 6.0, -6.0]
    bidirectional = tilt_scheme("bidirectional", max_tilt_degrees=9, start_degrees=-3)
    assert bidirectional == [-3.0, 0.0, 3.0, 6.0, 9.0, -6.0, -9.0]
    with pytest.raises(ValueError, match="unknown"):
        tilt_scheme("spiral", max_tilt_degrees=9)  # type: ignore[arg-type]


def test_mdocfile_reads_what_the_simulator_wrote(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-1"
    simulate_small(session, "retake:1:2", "mdoc-order:2", "dark:2:1", positions=2, scheme="bidirectional")
    for name in ("Position_1", "Position_2"):
        truth = load_ground_truth(session / "ground_truth" / f"{name}.json")
        frame = mdocfile.read(session / f"{name}.mdoc")  # the library's own reader, a pandas DataFrame
        assert list(frame["ZValue"]) == [t.z_value for t in truth.tilts]
        assert list(frame["TiltAngle"]) == [t.nominal_tilt_angle_degrees for t in truth.tilts]
        assert list(frame["ExposureDose"]) == [round(t.dose_e_per_angstrom2, 3) for t in truth.tilts]
        assert list(frame["PriorRecordDose"]) == [round(t.prior_dose_e_per_angstrom2, 3) for t in truth.tilts]
        assert [PureWindowsPath(str(p)).name for p in frame["SubFramePath"]] == [
            t.movie.rpartition("/")[2] for t in truth.tilts
        ]
        assert list(frame["NumSubFrames"]) == [truth.frames] * len(truth.tilts)
        assert set(frame["PixelSpacing"]) == {truth.pixel_size_angstroms}
        assert [tuple(s) for s in frame["ImageShift"]] == [tuple(truth.image_shift_micrometres)] * len(
            truth.tilts
        )
        # the connector's reader gives the same, plus the tilt axis from the title line
        info = read_mdoc(session / f"{name}.mdoc")
        assert info.tilt_axis_angle_degrees == truth.nominal_tilt_axis_angle_degrees
        assert [serialem_datetime(t.acquired_at) for t in info.tilts] == [
            serialem_datetime(__import__("datetime").datetime.fromisoformat(t.acquired_at))
            for t in truth.tilts
        ]
        assert len(info.distinct_angles()) == len(truth.scheme_angles_degrees) == 7
    # position 2 was written with its fields shuffled, position 1 in SerialEM's usual order
    p1 = (session / "Position_1.mdoc").read_text().split("[ZValue = 0]")[1].split("\n")[1]
    p2 = load_ground_truth(session / "ground_truth" / "Position_2.json")
    assert p1.startswith("TiltAngle")
    assert p2.mdoc_fields_shuffled
    first_fields = [
        [line.split(" = ")[0] for line in block.strip().splitlines()[1:]]
        for block in (session / "Position_2.mdoc").read_text().split("\n\n")
        if block.startswith("[ZValue")
    ]
    assert any(fields[0] != "TiltAngle" for fields in first_fields)
    truth1 = load_ground_truth(session / "ground_truth" / "Position_1.json")
    retaken = [t for t in truth1.tilts if t.superseded_by_z_value is not None]
    assert len(retaken) == 1
    assert len(truth1.counted_tilts()) == 7
    assert (
        truth1.tilts[retaken[0].z_value + 1].nominal_tilt_angle_degrees
        == retaken[0].nominal_tilt_angle_degrees
    )
