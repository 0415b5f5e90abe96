"""The ISPyB writer on SQLite, MariaDB and PostgreSQL: expected rows, idempotent replay in any order."""

from __future__ import annotations

import random
import uuid

import pytest
import sqlalchemy as sa
from ispyb_fixtures import table_snapshot
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.chain import job_uuid
from tiltstream.connectors.ispyb.errors import RecordRejectedError
from tiltstream.connectors.ispyb.samples import session_events, versioned_event
from tiltstream.connectors.ispyb.schema import SchemaMismatchError, check_schema, create_tables
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink
from tiltstream.streams.samples import sample_event

SERIES, TILTS = 3, 41
ROOTS = {"raw": "/dls/m02/data/2026/cm40000-1", "processed": "/dls/m02/data/2026/cm40000-1/processed"}


def make_sink(engine: Engine) -> IspybSink:
    return IspybSink(IspybSinkSettings(database_url=str(engine.url), roots=ROOTS), engine=engine)


def scalar(engine: Engine, query: str) -> object:
    with engine.connect() as connection:
        quoted = query.replace('"', "`") if engine.dialect.name == "mysql" else query
        return connection.execute(sa.text(quoted)).scalar_one()


def test_session_writes_expected_rows(ispyb_engine: Engine) -> None:
    sink = make_sink(ispyb_engine)
    assert sink.write(session_events(SERIES, TILTS, failed_series=2)) > 0
    counts = {name: len(rows) for name, rows in table_snapshot(ispyb_engine).items()}
    assert counts == {
        "Person": 1,
        "Proposal": 1,
        "BLSession": 1,
        "DataCollectionGroup": SERIES,
        "DataCollection": SERIES,
        # per series: motioncorr, ctf, reconstruct v1/v2, denoise v1/v2
        "ProcessingJob": 6 * SERIES,
        "AutoProcProgram": 6 * SERIES,
        "ProcessingJobParameter": 2 * SERIES * (3 + 1),  # version, request_id, reason; model
        "Movie": SERIES * TILTS,
        "MotionCorrection": SERIES * TILTS - 1,  # one failed
        "CTF": SERIES * TILTS - 1,
        "Tomogram": SERIES,  # version 2 superseded version 1
        "TiltImageAlignment": SERIES * TILTS,
        "ProcessedTomogram": 2 * SERIES,
    }
    assert (
        scalar(
            ispyb_engine,
            'SELECT "experimentType" FROM "DataCollectionGroup" WHERE "dataCollectionGroupId" = 1',
        )
        == "tomo"
    )
    assert (
        scalar(ispyb_engine, 'SELECT COUNT(*) FROM "Tomogram" WHERE "volumeFile" LIKE \'%.v2.mrc\'') == SERIES
    )
    assert (
        scalar(ispyb_engine, 'SELECT COUNT(*) FROM "ProcessedTomogram" WHERE "filePath" LIKE \'%.v1.%\'') == 0
    )
    denoised = scalar(
        ispyb_engine, 'SELECT MIN("filePath") FROM "ProcessedTomogram" WHERE "processingType" = \'Denoised\''
    )
    assert denoised == ROOTS["processed"] + "/cm40000-1/tomograms/Position_1.v2.denoised.mrc"
    movie = sample_event("MovieAcquired", 1, 5)
    path = scalar(
        ispyb_engine, 'SELECT "movieFullPath" FROM "Movie" WHERE "movieNumber" = 6 AND "dataCollectionId" = 1'
    )
    assert path == f"{ROOTS['raw']}/{movie['movie']['path']}"
    fluence = scalar(
        ispyb_engine, 'SELECT "fluence" FROM "Movie" WHERE "movieNumber" = 6 AND "dataCollectionId" = 1'
    )
    assert fluence == pytest.approx(
        movie["prior_dose_e_per_angstrom2"] + movie["dose_e_per_angstrom2"], rel=1e-5
    )
    ctf = sample_event("CtfEstimated", 1, 5)
    defocus = scalar(ispyb_engine, 'SELECT MAX("estimatedDefocus") FROM "CTF" WHERE "ctfId" = 6')
    assert defocus == pytest.approx((ctf["defocus_u_angstroms"] + ctf["defocus_v_angstroms"]) / 2, rel=1e-5)
    failed = scalar(ispyb_engine, 'SELECT COUNT(*) FROM "AutoProcProgram" WHERE "processingStatus" = 0')
    assert failed == 1
    message = scalar(
        ispyb_engine, 'SELECT "processingMessage" FROM "AutoProcProgram" WHERE "processingStatus" = 0'
    )
    assert "CorruptInputError" in str(message)
    running = scalar(ispyb_engine, 'SELECT COUNT(*) FROM "AutoProcProgram" WHERE "processingStatus" IS NULL')
    assert running == 0
    with ispyb_engine.connect() as connection:
        uuids = {
            bytes(u)
            for u in connection.execute(
                sa.text(
                    'SELECT "jobUuid" FROM "AutoProcProgram"'.replace('"', "`")
                    if ispyb_engine.dialect.name == "mysql"
                    else 'SELECT "jobUuid" FROM "AutoProcProgram"'
                )
            ).scalars()
        }
    assert job_uuid("cm40000-1:Position_1", "motioncorr") in uuids
    assert job_uuid("cm40000-1:Position_3", "reconstruct", "cm40000-1:Position_3:v2") in uuids


def test_replay_in_any_order_leaves_identical_tables(ispyb_engine: Engine) -> None:
    events = session_events(SERIES, TILTS, failed_series=1)
    sink = make_sink(ispyb_engine)
    sink.write(events)
    first = table_snapshot(ispyb_engine)
    shuffled = list(events)
    for seed in (1, 2):
        random.Random(seed).shuffle(shuffled)
        assert sink.write(shuffled) == 0  # nothing to change
        assert table_snapshot(ispyb_engine) == first
    fresh = make_sink(ispyb_engine)  # no id cache: every key looked up in the database
    fresh.write(reversed(events))
    assert table_snapshot(ispyb_engine) == first


def test_newer_version_first_is_not_overwritten(ispyb_engine: Engine) -> None:
    sink = make_sink(ispyb_engine)
    sink.write([("TomogramReconstructed", versioned_event("TomogramReconstructed", 1, 2))])
    sink.write([("TomogramDenoised", versioned_event("TomogramDenoised", 1, 1))])
    sink.write([("TomogramReconstructed", versioned_event("TomogramReconstructed", 1, 1))])
    assert scalar(ispyb_engine, 'SELECT COUNT(*) FROM "Tomogram"') == 1
    assert str(scalar(ispyb_engine, 'SELECT "volumeFile" FROM "Tomogram"')).endswith(".v2.mrc")
    assert (
        scalar(ispyb_engine, 'SELECT COUNT(*) FROM "ProcessedTomogram" WHERE "processingType" = \'Denoised\'')
        == 0
    )
    sink.write([("TomogramDenoised", versioned_event("TomogramDenoised", 1, 3))])  # v3 before its tomogram
    assert scalar(ispyb_engine, 'SELECT COUNT(*) FROM "TiltImageAlignment"') == 0
    assert scalar(ispyb_engine, 'SELECT "volumeFile" FROM "Tomogram"') is None


def test_poison_record_is_rejected_and_rolled_back(ispyb_engine: Engine) -> None:
    sink = make_sink(ispyb_engine)
    good = sample_event("MovieAcquired", 1, 0)
    poison = sample_event("MovieAcquired", 1, 1)
    poison["movie"] = {"root": "raw", "path": "x" * 300 + ".tiff"}
    with pytest.raises(RecordRejectedError, match=r"Movie\.movieFullPath holds 255 characters"):
        sink.write([("MovieAcquired", good), ("MovieAcquired", poison)])
    assert scalar(ispyb_engine, 'SELECT COUNT(*) FROM "Movie"') == 0
    sink.write([("MovieAcquired", good)])  # the id cache forgot the rolled-back rows
    assert scalar(ispyb_engine, 'SELECT COUNT(*) FROM "Movie"') == 1
    unknown = sample_event("MovieAcquired", 1, 2)
    unknown["movie"] = {"root": "elsewhere", "path": "a.tiff"}
    with pytest.raises(RecordRejectedError, match="no mount point for data root 'elsewhere'"):
        sink.write([("MovieAcquired", unknown)])
    climbing = sample_event("MovieAcquired", 1, 2)
    climbing["movie"] = {"root": "raw", "path": "../../etc/passwd"}
    with pytest.raises(RecordRejectedError, match="leaves its root"):
        sink.write([("MovieAcquired", climbing)])


def test_schema_check_names_what_is_missing(ispyb_url: str) -> None:
    engine = sa.create_engine(ispyb_url)
    with pytest.raises(SchemaMismatchError, match="table Movie"):
        check_schema(engine)
    assert "Tomogram" in create_tables(engine)
    assert create_tables(engine) == []  # a second init-db creates nothing
    check_schema(engine)
    with engine.begin() as connection:
        quote = "`" if engine.dialect.name == "mysql" else '"'
        connection.execute(sa.text(f"ALTER TABLE {quote}CTF{quote} DROP COLUMN {quote}ccValue{quote}"))
    with pytest.raises(SchemaMismatchError, match=r"column CTF\.ccValue") as caught:
        check_schema(engine)
    assert caught.value.missing == ["column CTF.ccValue"]
    engine.dispose()


def test_unknown_visit_is_rejected(ispyb_engine: Engine) -> None:
    event = sample_event("MovieAcquired", 1, 0)
    event["metadata"]["session_id"] = f"not a visit {uuid.uuid4()}"
    with pytest.raises(RecordRejectedError, match="is not a visit"):
        make_sink(ispyb_engine).write([("MovieAcquired", event)])
