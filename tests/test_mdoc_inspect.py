"""``tiltstream mdoc inspect``: what the source would announce for real files, or why it refuses them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings

DATA = Path(__file__).parent / "data" / "mdoc"


def _inspect(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(create_app(CliSettings()), ["mdoc", "inspect", *args])
    return result.exit_code, result.output


def test_inspect_json_reports_what_the_source_would_announce() -> None:
    code, out = _inspect(
        str(DATA / "murfey_chrom_07_ts_010.mrc.mdoc"), "--json", "--set", "time_zone=Europe/London"
    )
    assert code == 0, out
    (report,) = json.loads(out)
    assert report["series"] == "murfey_chrom_07_ts_010"
    assert (report["writer"], report["tilt_axis_angle_degrees"], report["tilt_axis_source"]) == (
        "serialem",
        83.8,
        "mdoc",
    )
    assert report["pixel_size_angstroms"] == 1.94
    assert report["dose_known"] is False
    assert report["dose_weighting"].startswith("off")
    assert [t["order"] for t in report["tilts"]] == list(range(11))
    assert report["tilts"][3]["tilt_angle_degrees"] == -3.00913
    assert report["tilts"][0]["acquired_at_utc"] == "2022-08-01T17:58:35+00:00"  # 18:58:35 BST
    assert {t["dose_e_per_angstrom2"] for t in report["tilts"]} == {None}


def test_inspect_with_a_session_dose_and_refusals_with_their_reasons() -> None:
    files = [DATA / "mdocfile_tilt_series.mdoc", DATA / "mdocfile_frame_set_single.mdoc"]
    code, out = _inspect(*map(str, files), "--json", "--set", "dose_per_tilt_e_per_angstrom2=3")
    assert code == 1  # a refused file
    embl, frame_set = json.loads(out)
    assert "no Voltage" in embl["refused"]
    assert "frame-set mdoc" in frame_set["refused"]
    code, out = _inspect(
        str(files[0]), "--json", "--set", "voltage_kv=300", "--set", "dose_per_tilt_e_per_angstrom2=3"
    )
    assert code == 0
    (embl,) = json.loads(out)
    assert embl["series"] == "mdocfile_tilt_series"
    assert embl["tilt_axis_angle_degrees"] == 85.3
    assert {t["dose_source"] for t in embl["tilts"]} == {"session-per-tilt"}
    assert embl["tilts"][2]["prior_dose_e_per_angstrom2"] == 6.0


def test_inspect_prints_a_table_and_refuses_bad_parameters() -> None:
    code, out = _inspect(str(DATA / "mdocfile_montage_section.mdoc"))
    assert code == 1
    assert "montage mdoc" in out
    code, out = _inspect(str(DATA / "murfey_chrom_07_ts_010.mrc.mdoc"), "--set", "voltage_kv=lots")
    assert code == 2
    assert "voltage_kv" in out
    code, out = _inspect(str(DATA / "murfey_chrom_07_ts_010.mrc.mdoc"), "--set", "colour=blue")
    assert code == 2
    assert "unknown session parameter 'colour'" in out
