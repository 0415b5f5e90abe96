"""Usage statistics read back from ISPyB after the real sink wrote two microscopes' visits."""

from __future__ import annotations

import json
from datetime import date

import pytest
from ispyb_fixtures import IspybDatabase
from stats_fixtures import Facility, expected, write_facility
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.connectors.ispyb.sink import create_engine
from tiltstream.settings import CliSettings
from tiltstream.stats.aggregate import StatsRow
from tiltstream.stats.usage import usage_stats


@pytest.fixture
def facility(ispyb_database: IspybDatabase) -> Facility:
    """Both visits written by the sink, on each kind of database."""
    return write_facility(ispyb_database)


def _counts(row: StatsRow) -> dict[str, object]:
    return {
        "tilt_series": row.tilt_series,
        "movies": row.movies,
        "tomograms": row.tomograms,
        "denoised": row.denoised,
        "failures": row.failures,
        "median_seconds_to_tomogram": row.median_seconds_to_tomogram,
    }


def test_counts_and_medians_per_session_match_the_events(facility: Facility) -> None:
    engine = create_engine(facility.database.reader_url)  # the read-only account on MariaDB
    try:
        stats = usage_stats(engine)
    finally:
        engine.dispose()
    ours = ("m02", "m03")  # the canonical schema's own test data has sessions on other beamlines
    sessions = {row.key: row for row in stats.by["session"] if row.microscope in ours}
    microscopes = {row.key: row.microscope for row in sessions.values()}
    assert microscopes == {"bi40001-1": "m03", "cm40000-1": "m02"}
    for visit, events in facility.events.items():
        assert _counts(sessions[visit]) == expected(events)
    assert sessions["cm40000-1"].failures == {"motioncorr": 1}
    assert sessions["bi40001-1"].tomograms == 2  # the third series was never reconstructed
    days = {(row.microscope, row.key): row.tomograms for row in stats.by["day"] if row.microscope in ours}
    assert days == {("m02", "2026-11-25"): 2, ("m03", "2026-11-26"): 2}
    types = {(row.microscope, row.key) for row in stats.by["session_type"] if row.microscope in ours}
    user = "user" if facility.database.kind == "mariadb" else "bi"  # SessionType only in the canonical schema
    assert types == {("m02", "cm"), ("m03", user)}
    totals = [(row.microscope, row.tilt_series) for row in stats.total if row.microscope in ours]
    assert totals == [("m02", 2), ("m03", 3)]


def test_since_and_microscope_filter(facility: Facility) -> None:
    engine = create_engine(facility.database.reader_url)
    try:
        later = usage_stats(engine, since=date(2026, 11, 26))
        m02 = usage_stats(engine, microscope="m02")
        nothing = usage_stats(engine, microscope="m99")
    finally:
        engine.dispose()
    assert [row.key for row in later.by["session"]] == ["bi40001-1"]  # the schema's own data is older
    assert [row.key for row in m02.by["session"]] == ["cm40000-1"]
    assert _counts(m02.total[0]) == expected(facility.events["cm40000-1"])
    assert nothing.total == []
    assert nothing.by["day"] == []


@pytest.mark.parametrize("ispyb_database", ["mariadb"], indirect=True)
def test_cli_json(facility: Facility, ispyb_database: IspybDatabase) -> None:
    reader = ispyb_database.reader_url
    result = CliRunner().invoke(
        create_app(CliSettings()),
        [
            "stats",
            "--json",
            "--microscope",
            "m03",
            "--since",
            "2026-11-01",
            "--url",
            reader,
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["query"] == {"since": "2026-11-01", "microscope": "m03"}
    (total,) = found["total"]
    want = expected(facility.events["bi40001-1"])
    assert {key: total[key] for key in want} == want
    assert [row["key"] for row in found["session_type"]] == ["user"]


def test_cli_refuses_a_bad_day_and_an_unreachable_database(tmp_path: object) -> None:
    app = create_app(CliSettings())
    bad = CliRunner().invoke(app, ["stats", "--since", "25/11/2026", "--url", "sqlite://"])
    assert bad.exit_code == 2
    assert "is not a day" in bad.output
    down = CliRunner().invoke(app, ["stats", "--url", "mysql+pymysql://nobody:x@127.0.0.1:9/ispyb"])
    assert down.exit_code == 1
    assert "cannot read ISPyB" in down.output
    assert "nobody:x@" not in down.output
