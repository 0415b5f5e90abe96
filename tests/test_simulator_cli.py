"""``tiltstream simulate``: a session directory laid out like a microscope's, with its ground truth."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.connectors.simulator import load_ground_truth
from tiltstream.connectors.source import read_mdoc
from tiltstream.settings import CliSettings


def test_simulate_writes_a_session(tmp_path: Path) -> None:
    session = tmp_path / "cm40000-2"
    args = ["simulate", str(session), "--positions", "3", "--size", "128", "--frames", "2", "--max-tilt", "6"]
    args += ["--format", "mrc", "--fault", "cancel:3:2", "--fault", "missing:1:1", "--microscope", "m03"]
    result = CliRunner().invoke(create_app(CliSettings()), args)
    assert result.exit_code == 0, result.output
    assert "Wrote 12 movies of 3 tilt series" in result.output
    assert sorted(p.name for p in session.glob("*.mdoc")) == [f"Position_{i}.mdoc" for i in (1, 2, 3)]
    movies = sorted(p.name for p in (session / "frames").iterdir())
    assert len(movies) == 11
    assert all(m.endswith("_fractions.mrc") for m in movies)
    cancelled = load_ground_truth(session / "ground_truth" / "Position_3.json")
    assert cancelled.cancelled_after_tilts == 2
    assert len(cancelled.tilts) == 2
    assert cancelled.finished
    assert len(read_mdoc(session / "Position_3.mdoc").tilts) == 2
    assert "m03" in (session / "Position_1.mdoc").read_text()
    # PACE positions sit on a beam-shift grid around the tracking position
    shifts = {
        tuple(load_ground_truth(session / "ground_truth" / f"Position_{i}.json").image_shift_micrometres)
        for i in (1, 2, 3)
    }
    assert len(shifts) == 3


def test_simulate_refuses_a_bad_fault(tmp_path: Path) -> None:
    result = CliRunner().invoke(create_app(CliSettings()), ["simulate", str(tmp_path), "--fault", "melt:1:1"])
    assert result.exit_code == 2
    assert "unknown kind" in result.output
