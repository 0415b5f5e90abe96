"""The whole pipeline on a small simulated day: real broker, every service as a real process, MariaDB.

Two microscopes acquire two sessions each at the same time (their events interleave on every topic), into
Diamond's canonical ISPyB schema, written as its processing role; the facility (the test) registers the
four visits first, as its user office does. An undisturbed run ends with a tomogram and a denoised
tomogram per tilt series in ISPyB, every row under its own visit and data collection group, nothing
written twice, and a latency breakdown. A second run meets every trouble an operator meets (each service
killed with SIGKILL mid-session, the broker restarted, a bad parameter fixed and the series reprocessed,
records the database refused reinjected after the fix) and must end with the same database content as
the undisturbed one.

A third, small run on its own (select it with ``-k eer_session``) is a Falcon-like EER session whose
detector has an uneven sensitivity: the operator sets the gain orientation and the EER grouping with
``tiltstream session set``, the watcher finds the ``CountRef_*`` gain reference beside the frames, and the
motion corrector recovers the simulator's drift and flattens the frames with the turned reference.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eerfile
import mrcfile
import numpy as np
import pytest
import sqlalchemy as sa
from ispyb_content import Row, content_differences, ispyb_content
from ispyb_fixtures import IspybDatabase, Snapshot, make_database, register_visit, table_snapshot
from sqlalchemy import create_engine, text

from tiltstream.connectors.simulator.ground_truth import SeriesTruth, load_ground_truth
from tiltstream.connectors.simulator.truth_comparison import DRIFT_TOLERANCE_PIXELS, drift_rms_pixels
from tiltstream.demo_session import DemoOptions, DemoResult, run_demo_session
from tiltstream.live_session import SINK_GROUP, LiveSession

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(2400)]

#: Two microscopes, two visits each (two proposals), acquired at the same time. ``make_database``
#: registers the first one; the test registers the others.
SESSIONS = (("m02", "cm40000-1"), ("m01", "cm40001-1"), ("m02", "cm40000-2"), ("m01", "cm40001-2"))
VISIT_NAME = re.compile(r"cm4000[01]-[12]")

#: Both runs. No grace timeout may fire however slow the troubled run is; the facility creates the
#: visits. The small field of view (512 px of 1.5 Å: 768 Å) gets a lamella of 600 Å and a reconstruction
#: as thick as it is wide (128 voxels at binning 4 instead of 500), denoised in 64-voxel patches: the
#: denoising on CPU, which was most of the run, drops from ~5 min to well under a minute a series.
SESSION_ENV = {
    "TILTSTREAM_AGGREGATOR_GRACE_SECONDS": "1800",
    "TILTSTREAM_ISPYB_CREATE_VISITS": "false",
    "TILTSTREAM_SIMULATOR_DOSE_PER_TILT_E_PER_ANGSTROM2": "4",  # the weaker pixels' loss made up
    "TILTSTREAM_SIMULATOR_ICE_THICKNESS_ANGSTROMS": "600",
    "TILTSTREAM_AGGREGATOR_THICKNESS_ANGSTROMS": "768",
    "TILTSTREAM_DENOISE_PATCH_SIZE_PIXELS": "64",
}
#: Both runs' size: one 7-tilt series per visit.
SIZE: dict[str, Any] = {"positions": 1, "max_tilt_degrees": 30.0, "step_degrees": 10.0}
#: The facility's tables, which the sink must leave alone.
FACILITY_TABLES = ("Person", "Proposal", "BLSession")


@dataclass(frozen=True)
class Baseline:
    options: DemoOptions
    result: DemoResult
    database: IspybDatabase
    visits: dict[str, int]
    facility: Snapshot
    content: dict[str, list[Row]]


def _content(url: str, workdir: Path) -> dict[str, list[Row]]:
    engine = create_engine(url)
    try:
        return ispyb_content(engine, workdir)
    finally:
        engine.dispose()


def register_visits(admin_url: str) -> dict[str, int]:
    """The user office's side: every visit of :data:`SESSIONS`; ``BLSession.sessionId`` by visit."""
    admin = create_engine(admin_url)
    try:
        for microscope, visit in SESSIONS:
            if visit.endswith("-1") and visit != "cm40000-1":  # make_database registered cm40000-1
                register_visit(admin, visit, microscope)
        with admin.begin() as db:
            for microscope, visit in SESSIONS:
                code, number = visit[:2], visit[2:].split("-")[0]
                if not visit.endswith("-1"):  # a second visit on the same proposal
                    proposal = db.execute(
                        text(
                            "SELECT proposalId FROM Proposal WHERE proposalCode = :c AND proposalNumber = :n"
                        ),
                        {"c": code, "n": number},
                    ).scalar_one()
                    db.execute(
                        text(
                            "INSERT INTO BLSession (proposalId, visit_number, beamLineName) "
                            "VALUES (:p, :v, :m)"
                        ),
                        {"p": proposal, "v": int(visit.split("-")[1]), "m": microscope},
                    )
            return {
                visit: int(db.execute(text("SELECT retrieve_visit_id(:v)"), {"v": visit}).scalar_one())
                for _, visit in SESSIONS
            }
    finally:
        admin.dispose()


def _facility(admin_url: str) -> Snapshot:
    engine = create_engine(admin_url)
    try:
        snapshot = table_snapshot(engine)
    finally:
        engine.dispose()
    return {table: snapshot[table] for table in FACILITY_TABLES}


def _options(workdir: Path, database: IspybDatabase, timeout_seconds: float, **env: str) -> DemoOptions:
    (microscope, visit), *more = SESSIONS
    return DemoOptions(
        workdir=workdir,
        database_url=database.url,
        timeout_seconds=timeout_seconds,
        extra_env={**SESSION_ENV, **env},
        session_id=visit,
        microscope=microscope,
        more_sessions=tuple(more),
        create_tables=False,
        **SIZE,
    )


@pytest.fixture(scope="module")
def undisturbed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Baseline]:
    """One run from start to end with nothing going wrong."""
    work = tmp_path_factory.mktemp("undisturbed")
    databases = make_database(request, "mariadb", work)
    database = next(databases)
    visits = register_visits(database.admin_url)
    facility = _facility(database.admin_url)
    options = _options(work / "session", database, 1800)
    began = time.monotonic()
    result = run_demo_session(options)
    print(f"undisturbed run: {time.monotonic() - began:.0f} s")
    content = _content(database.admin_url, options.workdir)
    yield Baseline(options, result, database, visits, facility, content)
    next(databases, None)


def _ours(visits: dict[str, int]) -> str:
    """SQL: the data collections under the test's visits (the schema's own test data left out)."""
    ids = ", ".join(map(str, visits.values()))
    return f"SELECT dataCollectionId FROM DataCollection WHERE SESSIONID IN ({ids})"


def test_session_ends_with_tomograms_and_denoised_tomograms_in_ispyb(undisturbed: Baseline) -> None:
    options, result = undisturbed.options, undisturbed.result
    series = len(SESSIONS) * options.positions
    assert set(result.statuses) == {f"{visit}:Position_1" for _, visit in SESSIONS}
    assert {s["state"] for s in result.statuses.values()} == {"denoised"}, result.statuses
    # every tilt of every series compared with the simulator's truth (the demo's closing table)
    assert {a.tilt_series_id for a in result.agreements} == set(result.statuses)
    for agreement in result.agreements:
        assert agreement.tilts == options.tilts, agreement
        assert agreement.within_tolerance <= min(agreement.motion_ok, agreement.defocus_ok)
    for summary in result.summaries:
        assert summary.tilts_used >= 5
        assert summary.tomogram is not None
        assert summary.denoised is not None
        assert (options.workdir / "processed" / summary.tomogram).is_file()
        assert (options.workdir / "processed" / summary.denoised).is_file()
    ours = _ours(undisturbed.visits)
    engine = create_engine(undisturbed.database.admin_url)
    with engine.connect() as db:

        def count(sql: str) -> int:
            return int(db.execute(text(sql)).scalar_one())

        movies = f"SELECT movieId FROM Movie WHERE dataCollectionId IN ({ours})"
        corrections = f"SELECT motionCorrectionId FROM MotionCorrection WHERE movieId IN ({movies})"
        tomograms = f"SELECT tomogramId FROM Tomogram WHERE dataCollectionId IN ({ours})"
        assert count(f"SELECT COUNT(*) FROM ({ours}) AS d") == series
        assert count(f"SELECT COUNT(*) FROM ({movies}) AS m") == series * options.tilts
        assert count(f"SELECT COUNT(DISTINCT movieId) FROM MotionCorrection WHERE movieId IN ({movies})") == (
            series * options.tilts
        )
        assert count(f"SELECT COUNT(*) FROM ({corrections}) AS c") == series * options.tilts
        assert count(f"SELECT COUNT(*) FROM CTF WHERE motionCorrectionId IN ({corrections})") == (
            series * options.tilts
        )
        assert count(f"SELECT COUNT(*) FROM ({tomograms}) AS t") == series
        denoised = (
            "SELECT COUNT(*) FROM ProcessedTomogram WHERE processingType = 'Denoised' AND tomogramId IN"
        )
        assert count(f"{denoised} ({tomograms})") == series
    engine.dispose()


def _rows(db: sa.Connection, table: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in db.execute(text(f"SELECT * FROM {table}"))]


def _visits_named(*paths: str | None) -> set[str]:
    return {found for path in paths if path for found in VISIT_NAME.findall(path)}


def test_every_row_lands_under_its_own_visit_and_group_once(undisturbed: Baseline) -> None:
    """Four visits at once: each row under the visit whose files it names, no crossing, no duplicates."""
    visits, tilts = undisturbed.visits, undisturbed.options.tilts
    visit_of = {sid: visit for visit, sid in visits.items()}
    assert _facility(undisturbed.database.admin_url) == undisturbed.facility  # the sink created no visit
    engine = create_engine(undisturbed.database.admin_url)
    with engine.connect() as db:
        tables = {t: _rows(db, t) for t in ("BLSession", "DataCollectionGroup", "DataCollection")}
        tables |= {t: _rows(db, t) for t in ("Movie", "MotionCorrection", "CTF", "Tomogram")}
        tables |= {t: _rows(db, t) for t in ("ProcessedTomogram", "AutoProcProgram", "ProcessingJob")}
    engine.dispose()
    microscope = {r["sessionId"]: r["beamLineName"] for r in tables["BLSession"]}
    assert {visit: microscope[sid] for visit, sid in visits.items()} == {v: m for m, v in SESSIONS}
    groups = {r["dataCollectionGroupId"]: r["sessionId"] for r in tables["DataCollectionGroup"]}
    collections = {r["dataCollectionId"]: r for r in tables["DataCollection"] if r["SESSIONID"] in visit_of}
    positions = undisturbed.options.positions
    assert Counter(visit_of[r["SESSIONID"]] for r in collections.values()) == dict.fromkeys(visits, positions)
    for dc in collections.values():  # its own group, under its own visit, and the visit's files
        assert groups[dc["dataCollectionGroupId"]] == dc["SESSIONID"]
        assert _visits_named(dc["imageDirectory"]) == {visit_of[dc["SESSIONID"]]}, dc
    assert len({dc["dataCollectionGroupId"] for dc in collections.values()}) == len(collections)
    visit_of_dc = {dc_id: visit_of[dc["SESSIONID"]] for dc_id, dc in collections.items()}
    jobs = {r["processingJobId"]: r["dataCollectionId"] for r in tables["ProcessingJob"]}
    program_dc = {r["autoProcProgramId"]: jobs.get(r["processingJobId"]) for r in tables["AutoProcProgram"]}
    movies = {r["movieId"]: r for r in tables["Movie"]}
    per_collection = Counter(r["dataCollectionId"] for r in movies.values())
    assert per_collection == dict.fromkeys(collections, tilts)  # every movie under one of the four
    numbers = Counter((r["dataCollectionId"], r["movieNumber"]) for r in movies.values())
    assert set(numbers.values()) == {1}, numbers  # none twice
    for movie in movies.values():
        assert _visits_named(movie["movieFullPath"]) == {visit_of_dc[movie["dataCollectionId"]]}, movie
    corrections = {r["motionCorrectionId"]: r for r in tables["MotionCorrection"]}
    assert sorted(r["movieId"] for r in corrections.values()) == sorted(movies)  # one each
    for mc in corrections.values():
        dc = movies[mc["movieId"]]["dataCollectionId"]
        assert program_dc[mc["autoProcProgramId"]] == dc, mc
        assert _visits_named(mc["micrographFullPath"]) == {visit_of_dc[dc]}, mc
    ctfs = tables["CTF"]
    assert sorted(r["motionCorrectionId"] for r in ctfs) == sorted(corrections)
    for ctf in ctfs:
        dc = movies[corrections[ctf["motionCorrectionId"]]["movieId"]]["dataCollectionId"]
        assert program_dc[ctf["autoProcProgramId"]] == dc, ctf
        assert _visits_named(ctf["fftTheoreticalFullPath"]) <= {visit_of_dc[dc]}, ctf
    _check_tomograms(tables, visit_of_dc, program_dc)


def _check_tomograms(
    tables: dict[str, list[dict[str, Any]]], visit_of_dc: dict[int, str], program_dc: dict[int, int | None]
) -> None:
    tomograms = {r["tomogramId"]: r for r in tables["Tomogram"]}
    assert sorted(r["dataCollectionId"] for r in tomograms.values()) == sorted(visit_of_dc)  # one each
    for tomogram in tomograms.values():
        dc = tomogram["dataCollectionId"]
        assert program_dc[tomogram["autoProcProgramId"]] == dc, tomogram
        assert _visits_named(tomogram["volumeFile"], tomogram["fileDirectory"]) == {visit_of_dc[dc]}, tomogram
    denoised = [r for r in tables["ProcessedTomogram"] if r["processingType"] == "Denoised"]
    assert sorted(r["tomogramId"] for r in denoised) == sorted(tomograms)
    for row in denoised:
        visit = visit_of_dc[tomograms[row["tomogramId"]]["dataCollectionId"]]
        assert _visits_named(row["filePath"]) == {visit}, row


def test_latency_from_last_tilt_is_split_into_queued_processing_and_orchestration(
    undisturbed: Baseline,
) -> None:
    latencies = {s.tilt_series_id: s for s in undisturbed.result.latencies}
    summaries = {s.tilt_series_id: s for s in undisturbed.result.summaries}
    assert set(latencies) == set(summaries)
    assert len(latencies) == len(SESSIONS)
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


def _tomogram_sizes(admin_url: str, visits: dict[str, int]) -> list[Any]:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as db:
            found = db.execute(
                text(f"SELECT sizeX FROM Tomogram WHERE dataCollectionId IN ({_ours(visits)})")
            )
            return [r[0] for r in found]
    finally:
        engine.dispose()


def test_every_trouble_ends_with_the_same_database_content(
    undisturbed: Baseline, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    databases = make_database(request, "mariadb", tmp_path)
    database = next(databases)
    visits = register_visits(database.admin_url)
    # the bad parameter: a reconstruction binning that halves every tomogram
    options = _options(tmp_path / "session", database, 1800, TILTSTREAM_RECONSTRUCT_BINNING_OVERRIDE="8")
    try:
        began = time.monotonic()
        with LiveSession(options) as session:
            # the facility database refuses the tomogram records: a column too short for their XZ image
            _alter(database.admin_url, "ALTER TABLE Tomogram MODIFY projXZ VARCHAR(16)")
            session.acquire()
            _kill_each_service_once(session)
            finished = _wait_until_denoised(session)
            _reinject_after_widening(session, database.admin_url, visits, undisturbed)
            _reprocess_with_the_right_binning(session, sorted(finished))
        print(f"troubled run: {time.monotonic() - began:.0f} s")
        differences = content_differences(undisturbed.content, _content(database.admin_url, options.workdir))
        assert not differences, "\n".join(differences)
    finally:
        next(databases, None)


def _alter(admin_url: str, statement: str) -> None:
    """What the facility's DBA does to a table."""
    engine = create_engine(admin_url)
    try:
        with engine.begin() as db:
            db.execute(text(statement))
    finally:
        engine.dispose()


def _wait_until_denoised(session: LiveSession) -> dict[str, Any]:
    finished: dict[str, Any] = {}

    def done() -> bool:
        finished.update(session.statuses())
        return session.finished(finished)

    session.wait_until("every series denoised", done, 2.0)
    session.wait_until("the sink to catch up", session.sink_caught_up)
    for state in session.services.states:
        assert state.restarts >= 1, f"{state.spec.name} was not restarted"
        assert not state.failed, f"{state.spec.name} failed for good"
    assert {s["state"] for s in finished.values()} == {"denoised"}, finished
    return finished


def _reinject_after_widening(
    session: LiveSession, admin_url: str, visits: dict[str, int], undisturbed: Baseline
) -> None:
    """The refused records are in the sink's dead-letter topic; the DBA widens the column; reinjected."""
    refused = session.run("dlq", "show", SINK_GROUP, "--json")
    assert refused.returncode == 0, refused.stderr
    # the sink measured the values against the column it found and refused them itself, naming it
    assert refused.stdout.count("Tomogram.projXZ holds 16 characters") >= len(SESSIONS), refused.stdout[
        -3000:
    ]
    assert _tomogram_sizes(admin_url, visits) == [None] * len(SESSIONS)
    _alter(admin_url, "ALTER TABLE Tomogram MODIFY projXZ VARCHAR(255)")
    reinjected = session.run("dlq", "reinject", SINK_GROUP, "--execute")
    assert reinjected.returncode == 0, reinjected.stderr
    session.wait_until("the sink to write the reinjected records", session.sink_caught_up)
    wrong = set(_tomogram_sizes(admin_url, visits))
    baseline_sizes = set(_tomogram_sizes(undisturbed.database.admin_url, undisturbed.visits))
    assert wrong == {size // 2 for size in baseline_sizes}, (wrong, baseline_sizes)


def _reprocess_with_the_right_binning(session: LiveSession, series: list[str]) -> None:
    """The operator fixes the binning and reprocesses every series from the reconstruction."""
    session.services.restart("reconstruct", env={"TILTSTREAM_RECONSTRUCT_BINNING_OVERRIDE": "4"})
    for name in series:
        redo = session.run("reprocess", name, "--from", "reconstruct")
        assert redo.returncode == 0, redo.stderr

    def redone() -> bool:  # the second attempt reached the end of the pipeline for every series
        denoised = session.values("tomogram.denoised")
        again = {v["metadata"]["tilt_series_id"] for v in denoised if v["metadata"]["attempt"] >= 2}
        return again == set(series)

    session.wait_until("every series reconstructed and denoised again", redone, 2.0)
    session.wait_until("the sink to catch up", session.sink_caught_up)


def _kill_each_service_once(session: LiveSession) -> None:
    """Each service SIGKILLed once, mid-session, in the order work reaches it; the broker restarts."""
    counts = session.count
    session.wait_until("3 movies announced", lambda: counts("movie.acquired") >= 3, 0.2)
    for state in session.services.states:  # every microscope's watcher
        if state.spec.name.startswith("watch"):
            session.services.kill(state.spec.name)
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


#: The EER session: one series of 7 tilts (512 px of 1.5 Å, 5 output frames of 20 EER frames each), its
#: gain reference a Falcon ``.gain`` stored a quarter turn and a left-right flip away from the frames.
EER_SESSION_ID = "cm40002-1"
EER_GROUP = 20
EER_GAIN_TURNS = {"gain_rotation_quarter_turns": 1, "gain_flip": 2}
EER_ENV = {
    "TILTSTREAM_SIMULATOR_MOVIE_FORMAT": "eer",
    "TILTSTREAM_SIMULATOR_EER_FRAMES_PER_FRAME": str(EER_GROUP),
    "TILTSTREAM_SIMULATOR_GAIN_REFERENCE": "gain",
    **{f"TILTSTREAM_SIMULATOR_{k.upper()}": str(v) for k, v in EER_GAIN_TURNS.items()},
    "TILTSTREAM_SIMULATOR_DOSE_PER_TILT_E_PER_ANGSTROM2": "4",  # the weaker pixels' loss made up
    "TILTSTREAM_SIMULATOR_ICE_THICKNESS_ANGSTROMS": "600",
    "TILTSTREAM_AGGREGATOR_THICKNESS_ANGSTROMS": "768",
    "TILTSTREAM_DENOISE_PATCH_SIZE_PIXELS": "64",
}


def _set_eer_parameters(session: LiveSession) -> None:
    """The operator's ``tiltstream session set`` before the first movie; the watcher applies it."""
    assignments = [f"{k}={v}" for k, v in {**EER_GAIN_TURNS, "eer_group_frames": EER_GROUP}.items()]
    done = session.run("session", "set", EER_SESSION_ID, *assignments, "--microscope", "m03")
    assert done.returncode == 0, done.stderr
    log = session.logs / "watch.log"
    session.wait_until(
        "the watcher to apply the session parameters",
        lambda: log.is_file() and "session parameters applied" in log.read_text(),
        0.5,
    )


def _halves_ratio(image: np.ndarray) -> float:
    """Left half's mean over the right half's: the simulated detector's left half is 0.8 times as
    sensitive."""
    w = image.shape[-1]
    return float(image[..., : w // 2].mean() / image[..., w // 2 :].mean())


def test_eer_session_with_a_turned_gain_reference_recovers_the_drift(tmp_path: Path) -> None:
    options = DemoOptions(
        workdir=tmp_path / "eer",
        positions=1,
        frames=5,
        max_tilt_degrees=30.0,
        step_degrees=10.0,
        session_id=EER_SESSION_ID,
        microscope="m03",
        timeout_seconds=900,
        extra_env=EER_ENV,
    )
    with LiveSession(options) as session:
        _set_eer_parameters(session)
        session.acquire()
        session.wait_until("the series to finish", lambda: session.finished(session.statuses()), 2.0)
        statuses = session.statuses()
        acquired = session.values("movie.acquired")
        corrected = {e["acquisition_order"]: e for e in session.values("movie.motion-corrected")}
        fits = session.values("micrograph.ctf-estimated")
        tomograms = session.values("tomogram.reconstructed")
    assert [s["state"] for s in statuses.values()] == ["denoised"], statuses
    truth = load_ground_truth(session.session_dir / "ground_truth" / "Position_1.json")
    assert len(acquired) == len(corrected) == len(fits) == options.tilts
    assert len(tomograms) == 1
    assert truth.gain_reference == f"frames/CountRef_{EER_SESSION_ID}.gain"
    gain = f"{EER_SESSION_ID}/{truth.gain_reference}"
    for movie in acquired:  # the watcher found the reference and carried the operator's values
        assert movie["movie_format"] == "eer"
        assert movie["frame_count"] == options.frames * EER_GROUP
        assert movie["gain_reference"] == {"root": "raw", "path": gain}
        assert {k: movie[k] for k in EER_GAIN_TURNS} == EER_GAIN_TURNS
        assert movie["eer_group_frames"] == EER_GROUP
        assert movie["session_parameters_version"] >= 1
    _check_eer_motion(session, truth, corrected)


def _check_eer_motion(session: LiveSession, truth: SeriesTruth, corrected: dict[int, dict[str, Any]]) -> None:
    """Every tilt's drift within 0.5 px of the truth, and its frame sum flat, where the raw EER sum
    carries the detector's weak left half."""
    figures = []
    for tilt in truth.counted_tilts():
        event = corrected[tilt.z_value]
        shifts = sorted(event["frame_shifts"], key=lambda s: s["frame_index"])
        applied = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in shifts])
        error = drift_rms_pixels(applied / truth.pixel_size_angstroms, np.array(tilt.frame_shifts_pixels))
        plain = event["micrograph_not_dose_weighted"] or event["micrograph"]
        with mrcfile.open(session.processed / plain["path"], permissive=True) as mrc:
            flat = _halves_ratio(np.asarray(mrc.data, dtype=np.float64))
        raw = _halves_ratio(eerfile.read(session.session_dir / tilt.movie).sum(axis=0, dtype=np.float64))
        figures.append({"z": tilt.z_value, "drift_rms_px": round(error, 3), "raw": raw, "flat": flat})
        assert error < DRIFT_TOLERANCE_PIXELS, figures
        assert raw < 0.85, figures  # the gain was needed
        assert abs(flat - 1) < 0.04, figures  # and applied, turned the right way
    print(json.dumps(figures))
