"""The whole pipeline on a small simulated session: real broker, every service as a real process, MariaDB.

Every tilt series ends with a tomogram and a denoised tomogram in ISPyB, and nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ispyb_fixtures import fresh_database
from sqlalchemy import create_engine, text

from tiltstream.demo_session import DemoOptions, run_demo_session

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1200)]


@pytest.fixture
def mariadb_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database(request, "mariadb", tmp_path)


def test_session_ends_with_tomograms_and_denoised_tomograms_in_ispyb(
    mariadb_url: str, tmp_path: Path
) -> None:
    options = DemoOptions(
        workdir=tmp_path / "session", positions=2, database_url=mariadb_url, timeout_seconds=900
    )
    statuses, summaries = run_demo_session(options)
    assert len(statuses) == 2
    assert {s["state"] for s in statuses.values()} == {"denoised"}, statuses
    for summary in summaries:
        assert summary.tilts_used >= 5
        assert summary.tomogram is not None
        assert summary.denoised is not None
        assert (options.workdir / "processed" / summary.tomogram).is_file()
        assert (options.workdir / "processed" / summary.denoised).is_file()
    engine = create_engine(mariadb_url)
    with engine.connect() as db:

        def count(sql: str) -> int:
            return int(db.execute(text(sql)).scalar_one())

        assert count("SELECT COUNT(*) FROM DataCollection") == 2
        assert count("SELECT COUNT(*) FROM Movie") == 2 * options.tilts
        assert count("SELECT COUNT(DISTINCT movieId) FROM MotionCorrection") == count(
            "SELECT COUNT(*) FROM MotionCorrection"
        )
        assert count("SELECT COUNT(*) FROM MotionCorrection") == 2 * options.tilts
        assert count("SELECT COUNT(*) FROM Tomogram") == 2
        assert count("SELECT COUNT(*) FROM ProcessedTomogram WHERE processingType = 'Denoised'") == 2
    engine.dispose()
