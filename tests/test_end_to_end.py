"""The whole pipeline on a small simulated session: real broker, every service as a real process, MariaDB.

An undisturbed session ends with a tomogram and a denoised tomogram per tilt series in ISPyB, nothing
written twice, and a latency breakdown. A second session meets every trouble an operator meets (each
service killed with SIGKILL mid-session, the broker restarted, a bad parameter fixed and the series
reprocessed, records the database refused reinjected after the fix) and must end with the same
database content as the undisturbed one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ispyb_content import Row, content_differences, ispyb_content
from ispyb_fixtures import fresh_database
from sqlalchemy import create_engine, text

from tiltstream.demo_session import DemoOptions, DemoResult, run_demo_session
from tiltstream.live_session import SINK_GROUP, LiveSession

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(2400)]

#: Both sessions: no grace timeout may fire however slow the troubled session is.
SESSION_ENV = {"TILTSTREAM_AGGREGATOR_GRACE_SECONDS": "1800"}


@dataclass(frozen=True)
class Baseline:
    options: DemoOptions
    result: DemoResult
    database_url: str
    content: dict[str, list[Row]]


def _content(url: str, workdir: Path) -> dict[str, list[Row]]:
    engine = create_engine(url)
    try:
        return ispyb_content(engine, workdir)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def undisturbed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Baseline]:
    """One session run from start to end with nothing going wrong."""
    work = tmp_path_factory.mktemp("undisturbed")
    database = fresh_database(request, "mariadb", work)
    url = next(database)
    options = DemoOptions(
        workdir=work / "session", database_url=url, timeout_seconds=900, extra_env=SESSION_ENV
    )
    result = run_demo_session(options)
    yield Baseline(options, result, url, _content(url, options.workdir))
    next(database, None)


def test_session_ends_with_tomograms_and_denoised_tomograms_in_ispyb(undisturbed: Baseline) -> None:
    options, result = undisturbed.options, undisturbed.result
    assert len(result.statuses) == 2
    assert {s["state"] for s in result.statuses.values()} == {"denoised"}, result.statuses
    for summary in result.summaries:
        assert summary.tilts_used >= 5
        assert summary.tomogram is not None
        assert summary.denoised is not None
        assert (options.workdir / "processed" / summary.tomogram).is_file()
        assert (options.workdir / "processed" / summary.denoised).is_file()
    engine = create_engine(undisturbed.database_url)
    with engine.connect() as db:

        def count(sql: str) -> int:
            return int(db.execute(text(sql)).scalar_one())

        assert count("SELECT COUNT(*) FROM DataCollection") == 2
        assert count("SELECT COUNT(*) FROM Movie") == 2 * options.tilts
        assert count("SELECT COUNT(DISTINCT movieId) FROM MotionCorrection") == count(
            "SELECT COUNT(*) FROM MotionCorrection"
        )
        assert count("SELECT COUNT(*) FROM MotionCorrection") == 2 * options.tilts
        assert count("SELECT COUNT(*) FROM CTF") == 2 * options.tilts
        assert count("SELECT COUNT(*) FROM Tomogram") == 2
        assert count("SELECT COUNT(*) FROM ProcessedTomogram WHERE processingType = 'Denoised'") == 2
    engine.dispose()


def test_latency_from_last_tilt_is_split_into_queued_processing_and_orchestration(
    undisturbed: Baseline,
) -> None:
    latencies = {s.tilt_series_id: s for s in undisturbed.result.latencies}
    summaries = {s.tilt_series_id: s for s in undisturbed.result.summaries}
    assert set(latencies) == set(summaries)
    for series, latency in latencies.items():
        assert latency.tomogram is not None
        assert latency.denoised is not None
        for split in (latency.tomogram, latency.denoised):
            parts = (split.queued_seconds, split.processing_seconds, split.orchestration_seconds)
            assert min(parts) >= 0
            assert sum(parts) == pytest.approx(split.total_seconds, abs=1e-3)
            assert split.processing_seconds > 0  # the reconstruction at least is on the path
        assert latency.denoised.total_seconds > latency.tomogram.total_seconds
        assert latency.denoised.processing_seconds > latency.tomogram.processing_seconds
        # the file is complete before the watcher announces it, and the watcher settles in seconds
        announced = summaries[series].seconds_last_tilt_to_tomogram
        assert announced is not None
        assert announced <= latency.tomogram.total_seconds < announced + 30


def _kill_when(session: LiveSession, service: str, what: str, reached: bool) -> None:
    assert reached, what
    session.services.kill(service)


def test_every_trouble_ends_with_the_same_database_content(
    undisturbed: Baseline, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    database = fresh_database(request, "mariadb", tmp_path)
    url = next(database)
    options = DemoOptions(
        workdir=tmp_path / "session",
        database_url=url,
        timeout_seconds=1800,
        # the bad parameter: a reconstruction binning that halves every tomogram
        extra_env={**SESSION_ENV, "TILTSTREAM_RECONSTRUCT_BINNING_OVERRIDE": "8"},
    )
    engine = create_engine(url)
    try:
        with LiveSession(options) as session:
            # the facility database refuses the tomogram records: a column too short for their XZ image
            with engine.begin() as db:
                db.execute(text("ALTER TABLE Tomogram MODIFY projXZ VARCHAR(16)"))
            session.acquire()

            _kill_each_service_once(session)

            finished = {}

            def done() -> bool:
                finished.update(session.statuses())
                return session.finished(finished)

            session.wait_until("every series denoised", done, 2.0)
            session.wait_until("the sink to catch up", session.sink_caught_up)
            for state in session.services.states:
                assert state.restarts >= 1, f"{state.spec.name} was not restarted"
                assert not state.failed, f"{state.spec.name} failed for good"
            assert {s["state"] for s in finished.values()} == {"denoised"}, finished

            # the refused records are in the sink's dead-letter topic; the DBA widens the column
            refused = session.run("dlq", "show", SINK_GROUP, "--json")
            assert refused.returncode == 0, refused.stderr
            # the sink measured the values against the column it found and refused them itself, naming it
            assert refused.stdout.count("Tomogram.projXZ holds 16 characters") >= 2, refused.stdout[-3000:]
            with engine.begin() as db:
                assert db.execute(text("SELECT COUNT(*) FROM Tomogram WHERE sizeX IS NULL")).scalar_one() == 2
                db.execute(text("ALTER TABLE Tomogram MODIFY projXZ VARCHAR(255)"))
            reinjected = session.run("dlq", "reinject", SINK_GROUP, "--execute")
            assert reinjected.returncode == 0, reinjected.stderr
            session.wait_until("the sink to write the reinjected records", session.sink_caught_up)
            with engine.connect() as db:
                wrong = {r[0] for r in db.execute(text("SELECT sizeX FROM Tomogram")).all()}
            baseline_sizes = {dict(row)["sizeX"] for row in undisturbed.content["Tomogram"]}
            assert wrong == {size // 2 for size in baseline_sizes}, (wrong, baseline_sizes)

            # the operator fixes the binning and reprocesses both series from the reconstruction
            session.services.restart("reconstruct", env={"TILTSTREAM_RECONSTRUCT_BINNING_OVERRIDE": "4"})
            for series in sorted(finished):
                redo = session.run("reprocess", series, "--from", "reconstruct")
                assert redo.returncode == 0, redo.stderr

            def redone() -> bool:  # the second attempt reached the end of the pipeline for both series
                denoised = session.values("tomogram.denoised")
                again = {v["metadata"]["tilt_series_id"] for v in denoised if v["metadata"]["attempt"] >= 2}
                return again == set(finished)

            session.wait_until("both series reconstructed and denoised again", redone, 2.0)
            session.wait_until("the sink to catch up", session.sink_caught_up)
        differences = content_differences(undisturbed.content, _content(url, options.workdir))
        assert not differences, "\n".join(differences)
    finally:
        engine.dispose()
        next(database, None)


def _kill_each_service_once(session: LiveSession) -> None:
    """Each service SIGKILLed once, mid-session, in the order work reaches it; the broker restarts."""
    counts = session.count
    session.wait_until("3 movies announced", lambda: counts("movie.acquired") >= 3, 0.2)
    session.services.kill("watch")
    session.wait_until("3 movies corrected", lambda: counts("movie.motion-corrected") >= 3, 0.2)
    session.services.kill("motioncorr")
    session.wait_until("3 CTF fits", lambda: counts("micrograph.ctf-estimated") >= 3, 0.2)
    session.services.kill("ctf")
    session.services.kill("ispyb-sink")
    session.wait_until("8 movies corrected", lambda: counts("movie.motion-corrected") >= 8, 0.2)
    session.services.kill("aggregate")
    session.wait_until("12 movies corrected", lambda: counts("movie.motion-corrected") >= 12)
    assert session.broker.stop() is True  # the broker restarted mid-session
    assert session.broker.start() is True
    requested = "a reconstruction requested"
    session.wait_until(requested, lambda: counts("tiltseries.reconstruction-requested") >= 1)
    time.sleep(3.0)  # into the job
    session.services.kill("reconstruct")
    session.wait_until("a tomogram", lambda: counts("tomogram.reconstructed") >= 1)
    time.sleep(2.0)
    session.services.kill("denoise")
