"""The newest attempt wins and failures heal, in either arrival order (on each database)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from ispyb_fixtures import IspybDatabase
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.samples import sample, versioned_event
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink

ROOTS = {"raw": "/dls/m02/data/2026/cm40000-1", "processed": "/dls/m02/data/2026/cm40000-1/processed"}
ORDERS = ("older-first", "newer-first")


def make_sink(engine: Engine) -> IspybSink:
    config = IspybSinkSettings(database_url=str(engine.url), roots=ROOTS)
    return IspybSink(config, engine=engine)


def fetch(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        quoted = query.replace('"', "`") if engine.dialect.name == "mysql" else query
        return [tuple(row) for row in connection.execute(sa.text(quoted))]


def attempt(record: str, value: dict[str, Any], number: int) -> tuple[str, dict[str, Any]]:
    value["metadata"]["attempt"] = number
    value["metadata"]["event_id"] += f"-a{number}"
    return record, value


def write_in_order(sink: IspybSink, events: list[tuple[str, dict[str, Any]]], order: str) -> None:
    """Each event in its own transaction, oldest first or newest first."""
    for event in events if order == "older-first" else reversed(events):
        sink.write([event])


def program(engine: Engine, stage: str) -> tuple[Any, ...]:
    rows = fetch(
        engine,
        'SELECT a."processingStatus", a."processingMessage" FROM "AutoProcProgram" a '
        'JOIN "ProcessingJob" p ON p."processingJobId" = a."processingJobId" '
        f"WHERE p.\"recipe\" = 'tiltstream-{stage}'",
    )
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("order", ORDERS)
def test_a_reprocessed_movie_replaces_the_older_attempt(
    ispyb_database: IspybDatabase, ispyb_engine: Engine, ispyb_admin: Engine, order: str
) -> None:
    sink = make_sink(ispyb_engine)
    sink.write([("MovieAcquired", sample("MovieAcquired", 1, 4))])
    first = sample("MovieMotionCorrected", 1, 4)
    second = sample("MovieMotionCorrected", 1, 4)
    second["total_motion_angstroms"] = first["total_motion_angstroms"] + 7.5
    ctf_first, ctf_second = sample("CtfEstimated", 1, 4), sample("CtfEstimated", 1, 4)
    ctf_second["fit_score"] = ctf_first["fit_score"] / 2
    events = [
        attempt("MovieMotionCorrected", first, 1),
        attempt("CtfEstimated", ctf_first, 1),
        attempt("MovieMotionCorrected", second, 2),
        attempt("CtfEstimated", ctf_second, 2),
    ]
    write_in_order(sink, events, order)
    [(motion,)] = fetch(ispyb_admin, 'SELECT "totalMotion" FROM "MotionCorrection"')
    assert motion == pytest.approx(second["total_motion_angstroms"], rel=1e-5)
    [(score,)] = fetch(ispyb_admin, 'SELECT "ccValue" FROM "CTF"')
    assert score == pytest.approx(ctf_second["fit_score"], rel=1e-5)
    assert program(ispyb_admin, "motioncorr") == (1, None)


@pytest.mark.parametrize("order", ORDERS)
def test_a_reprocessed_reconstruction_replaces_the_older_attempt(
    ispyb_database: IspybDatabase, ispyb_engine: Engine, ispyb_admin: Engine, order: str
) -> None:
    sink = make_sink(ispyb_engine)
    first = versioned_event("TomogramReconstructed", 1, 1)
    second = versioned_event("TomogramReconstructed", 1, 1)  # the same request, processed again
    second["tomogram"] = {
        **second["tomogram"],
        "path": second["tomogram"]["path"].replace(".mrc", ".again.mrc"),
    }
    second["global_alignment_quality"] = 0.55
    write_in_order(
        sink, [attempt("TomogramReconstructed", first, 1), attempt("TomogramReconstructed", second, 2)], order
    )
    [(volume, quality)] = fetch(ispyb_admin, 'SELECT "volumeFile", "globalAlignmentQuality" FROM "Tomogram"')
    assert str(volume).endswith(".again.mrc")
    assert quality == pytest.approx(0.55, rel=1e-5)


@pytest.mark.parametrize("order", ORDERS)
def test_a_failure_heals_when_a_newer_attempt_succeeds(
    ispyb_database: IspybDatabase, ispyb_engine: Engine, ispyb_admin: Engine, order: str
) -> None:
    sink = make_sink(ispyb_engine)
    sink.write([("MovieAcquired", sample("MovieAcquired", 1, t)) for t in (3, 4)])
    sink.write([("MovieMotionCorrected", sample("MovieMotionCorrected", 1, 3))])  # another movie, fine
    failed = attempt("ProcessingFailed", sample("ProcessingFailed", 1, 4), 1)
    healed = attempt("MovieMotionCorrected", sample("MovieMotionCorrected", 1, 4), 2)
    write_in_order(sink, [failed, healed], order)  # newer-first: the old failure must not undo it
    assert program(ispyb_admin, "motioncorr") == (1, None)
    assert (
        len(
            fetch(ispyb_admin, 'SELECT "totalMotion" FROM "MotionCorrection" WHERE "totalMotion" IS NOT NULL')
        )
        == 2
    )


@pytest.mark.parametrize("order", ORDERS)
def test_a_failure_of_the_newest_attempt_stands(
    ispyb_database: IspybDatabase, ispyb_engine: Engine, ispyb_admin: Engine, order: str
) -> None:
    sink = make_sink(ispyb_engine)
    sink.write([("MovieAcquired", sample("MovieAcquired", 1, 4))])
    succeeded = attempt("MovieMotionCorrected", sample("MovieMotionCorrected", 1, 4), 1)
    failed = attempt("ProcessingFailed", sample("ProcessingFailed", 1, 4), 2)
    write_in_order(sink, [succeeded, failed], order)
    status, message = program(ispyb_admin, "motioncorr")
    assert status == 0
    assert "CorruptInputError" in str(message)


def test_a_failure_heals_only_for_its_own_movie(ispyb_engine: Engine, ispyb_admin: Engine) -> None:
    sink = make_sink(ispyb_engine)
    sink.write([("MovieAcquired", sample("MovieAcquired", 1, t)) for t in (3, 4)])
    sink.write([attempt("ProcessingFailed", sample("ProcessingFailed", 1, t), 1) for t in (3, 4)])
    sink.write([attempt("MovieMotionCorrected", sample("MovieMotionCorrected", 1, 4), 2)])
    status, message = program(ispyb_admin, "motioncorr")
    assert status == 0  # movie 3 still failed
    assert "Position_1" in str(message)
    sink.write([attempt("MovieMotionCorrected", sample("MovieMotionCorrected", 1, 3), 3)])
    assert program(ispyb_admin, "motioncorr") == (1, None)
