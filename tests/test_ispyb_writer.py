"""The ISPyB writer on SQLite, MariaDB and PostgreSQL: expected rows, idempotent replay in any order."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram
from ispyb_fixtures import IspybDatabase, register_visit, table_snapshot
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.chain import job_uuid
from tiltstream.connectors.ispyb.errors import RecordRejectedError, VisitNotFoundError
from tiltstream.connectors.ispyb.records import sink_event
from tiltstream.connectors.ispyb.samples import sample, session_events, versioned_event
from tiltstream.connectors.ispyb.schema import SchemaMismatchError, check_schema, create_tables
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink
from tiltstream.streams.events import TomogramReconstructed
from tiltstream.streams.samples import sample_event

SERIES, TILTS = 3, 41
ROOTS = {"raw": "/dls/m02/data/2026/cm40000-1", "processed": "/dls/m02/data/2026/cm40000-1/processed"}


def make_sink(engine: Engine, **settings: object) -> IspybSink:
    config = IspybSinkSettings(database_url=str(engine.url), roots=ROOTS, **settings)  # type: ignore[arg-type]
    return IspybSink(config, engine=engine)


def scalar(engine: Engine, query: str, **parameters: object) -> object:
    with engine.connect() as connection:
        quoted = query.replace('"', "`") if engine.dialect.name == "mysql" else query
        return connection.execute(sa.text(quoted), parameters).scalar_one()


def counts(database: IspybDatabase) -> dict[str, int]:
    return {name: len(rows) for name, rows in database.new_rows().items()}


_MOVIE = (
    'SELECT m."{column}" FROM "Movie" m '
    'JOIN "DataCollection" d ON d."dataCollectionId" = m."dataCollectionId" '
    'WHERE m."movieNumber" = :number AND d."imagePrefix" = :prefix'
)


def test_session_writes_expected_rows(
    ispyb_database: IspybDatabase, ispyb_engine: Engine, ispyb_admin: Engine
) -> None:
    sink = make_sink(ispyb_engine)
    assert sink.write(session_events(SERIES, TILTS, failed_series=2)) > 0
    canonical = ispyb_database.kind == "mariadb"
    assert counts(ispyb_database) == {
        "Person": 0,  # the visit is the facility's: nothing created above it
        "Proposal": 0,
        "BLSession": 0,
        "DataCollectionGroup": SERIES,
        "DataCollection": SERIES,
        # per series: motioncorr, ctf, reconstruct v1/v2, denoise v1/v2 (+ the series' own on canonical)
        "ProcessingJob": (7 if canonical else 6) * SERIES,
        "AutoProcProgram": 6 * SERIES,
        "ProcessingJobParameter": 2 * SERIES * (3 + 1) + 1,  # version, request_id, reason; model; 1 outcome
        "Movie": SERIES * TILTS,
        "MotionCorrection": SERIES * TILTS - 1,  # one failed
        "CTF": SERIES * TILTS - 1,
        "Tomogram": SERIES,  # version 2 superseded version 1
        "TiltImageAlignment": SERIES * TILTS,
        "ProcessedTomogram": 2 * SERIES,
    }
    session_id = scalar(ispyb_admin, 'SELECT MAX("sessionId") FROM "BLSession"')
    assert (
        scalar(
            ispyb_admin,
            'SELECT MAX("experimentType") FROM "DataCollectionGroup" WHERE "sessionId" = :session',
            session=session_id,
        )
        == "tomo"
    )
    assert (
        scalar(ispyb_admin, 'SELECT COUNT(*) FROM "Tomogram" WHERE "volumeFile" LIKE \'%.v2.mrc\'') == SERIES
    )
    assert (
        scalar(ispyb_admin, 'SELECT COUNT(*) FROM "ProcessedTomogram" WHERE "filePath" LIKE \'%.v1.%\'') == 0
    )
    denoised = scalar(
        ispyb_admin, 'SELECT MIN("filePath") FROM "ProcessedTomogram" WHERE "processingType" = \'Denoised\''
    )
    assert denoised == ROOTS["processed"] + "/cm40000-1/tomograms/Position_1.v2.denoised.mrc"
    movie = sample_event("MovieAcquired", 1, 5)
    where = {"number": 6, "prefix": "Position_1"}
    path = scalar(ispyb_admin, _MOVIE.format(column="movieFullPath"), **where)
    assert path == f"{ROOTS['raw']}/{movie['movie']['path']}"
    fluence = scalar(ispyb_admin, _MOVIE.format(column="fluence"), **where)
    assert fluence == pytest.approx(
        movie["prior_dose_e_per_angstrom2"] + movie["dose_e_per_angstrom2"], rel=1e-5
    )
    defocus = scalar(ispyb_admin, _MOVIE.format(column="nominalDefocus"), **where)
    assert movie["target_defocus_micrometres"] < 0  # SerialEM's target: underfocus is negative
    assert defocus == pytest.approx(abs(movie["target_defocus_micrometres"]) * 1e4)  # ISPyB: a magnitude in Å
    ctf = sample_event("CtfEstimated", 1, 5)
    estimated = scalar(
        ispyb_admin,
        'SELECT c."estimatedDefocus" FROM "CTF" c JOIN "MotionCorrection" mc '
        'ON mc."motionCorrectionId" = c."motionCorrectionId" JOIN "Movie" m ON m."movieId" = mc."movieId" '
        'JOIN "DataCollection" d ON d."dataCollectionId" = m."dataCollectionId" '
        'WHERE m."movieNumber" = :number AND d."imagePrefix" = :prefix',
        **where,
    )
    assert estimated == pytest.approx((ctf["defocus_u_angstroms"] + ctf["defocus_v_angstroms"]) / 2, rel=1e-5)
    ours = (
        'FROM "AutoProcProgram" a JOIN "ProcessingJob" p ON p."processingJobId" = a."processingJobId" '
        "WHERE p.\"recipe\" LIKE 'tiltstream-%' AND "
    )
    assert scalar(ispyb_admin, f'SELECT COUNT(*) {ours} a."processingStatus" = 0') == 1
    message = scalar(ispyb_admin, f'SELECT a."processingMessage" {ours} a."processingStatus" = 0')
    assert "CorruptInputError" in str(message)
    assert scalar(ispyb_admin, f'SELECT COUNT(*) {ours} a."processingStatus" IS NULL') == 0
    schema = sink.writer.chain.schema
    assert schema is not None
    if schema.has("AutoProcProgram", "jobUuid"):
        with ispyb_admin.connect() as connection:
            uuids = {bytes(u) for u in connection.execute(sa.select(AutoProcProgram.jobUuid)).scalars()}
        assert job_uuid("cm40000-1:Position_1", "motioncorr") in uuids
        assert job_uuid("cm40000-1:Position_3", "reconstruct", "cm40000-1:Position_3:v2") in uuids
    else:
        assert canonical  # this snapshot of the canonical schema has no jobUuid


def test_replay_in_any_order_leaves_identical_tables(
    ispyb_database: IspybDatabase, ispyb_engine: Engine
) -> None:
    events = session_events(SERIES, TILTS, failed_series=1)
    sink = make_sink(ispyb_engine)
    sink.write(events)
    first = ispyb_database.new_rows()
    shuffled = list(events)
    for seed in (1, 2):
        random.Random(seed).shuffle(shuffled)
        assert sink.write(shuffled) == 0  # nothing to change
        assert ispyb_database.new_rows() == first
    fresh = make_sink(ispyb_engine)  # no id cache: every key looked up in the database
    fresh.write(reversed(events))
    assert ispyb_database.new_rows() == first


def test_newer_version_first_is_not_overwritten(ispyb_engine: Engine, ispyb_admin: Engine) -> None:
    sink = make_sink(ispyb_engine)
    sink.write([("TomogramReconstructed", versioned_event("TomogramReconstructed", 1, 2))])
    sink.write([("TomogramDenoised", versioned_event("TomogramDenoised", 1, 1))])
    sink.write([("TomogramReconstructed", versioned_event("TomogramReconstructed", 1, 1))])
    assert scalar(ispyb_admin, 'SELECT COUNT(*) FROM "Tomogram"') == 1
    assert str(scalar(ispyb_admin, 'SELECT "volumeFile" FROM "Tomogram"')).endswith(".v2.mrc")
    assert (
        scalar(ispyb_admin, 'SELECT COUNT(*) FROM "ProcessedTomogram" WHERE "processingType" = \'Denoised\'')
        == 0
    )
    sink.write([("TomogramDenoised", versioned_event("TomogramDenoised", 1, 3))])  # v3 before its tomogram
    aligned = 'SELECT COUNT(*) FROM "TiltImageAlignment" WHERE "refinedTiltAngle" IS NOT NULL'
    assert scalar(ispyb_admin, aligned) == 0  # v2's alignments emptied (the role may not delete)
    assert scalar(ispyb_admin, 'SELECT "volumeFile" FROM "Tomogram"') is None


def test_poison_record_is_rejected_and_rolled_back(ispyb_engine: Engine, ispyb_admin: Engine) -> None:
    sink = make_sink(ispyb_engine)
    good = sample_event("MovieAcquired", 1, 0)
    poison = sample_event("MovieAcquired", 1, 1)
    poison["movie"] = {"root": "raw", "path": "x" * 300 + ".tiff"}
    with pytest.raises(RecordRejectedError, match=r"Movie\.movieFullPath holds 255 characters"):
        sink.write([("MovieAcquired", good), ("MovieAcquired", poison)])
    assert scalar(ispyb_admin, 'SELECT COUNT(*) FROM "Movie"') == 0
    sink.write([("MovieAcquired", good)])  # the id cache forgot the rolled-back rows
    assert scalar(ispyb_admin, 'SELECT COUNT(*) FROM "Movie"') == 1
    unknown = sample_event("MovieAcquired", 1, 2)
    unknown["movie"] = {"root": "elsewhere", "path": "a.tiff"}
    with pytest.raises(RecordRejectedError, match="no mount point for data root 'elsewhere'"):
        sink.write([("MovieAcquired", unknown)])
    climbing = sample_event("MovieAcquired", 1, 2)
    climbing["movie"] = {"root": "raw", "path": "../../etc/passwd"}
    with pytest.raises(RecordRejectedError, match="leaves its root"):
        sink.write([("MovieAcquired", climbing)])


def test_schema_check_names_what_is_missing(ispyb_url: str) -> None:
    """ORM-built databases: ``init-db`` makes what is missing; a dropped column is named."""
    engine = sa.create_engine(ispyb_url)
    with pytest.raises(SchemaMismatchError, match="table Movie"):
        check_schema(engine)
    assert "Tomogram" in create_tables(engine)
    assert create_tables(engine) == []  # a second init-db creates nothing
    assert not check_schema(engine).canonical
    with engine.begin() as connection:
        quote = "`" if engine.dialect.name == "mysql" else '"'
        connection.execute(sa.text(f"ALTER TABLE {quote}CTF{quote} DROP COLUMN {quote}ccValue{quote}"))
    with pytest.raises(SchemaMismatchError, match=r"column CTF\.ccValue") as caught:
        check_schema(engine)
    assert caught.value.missing == ["column CTF.ccValue"]
    engine.dispose()


def test_session_id_that_is_not_a_visit_is_rejected(ispyb_engine: Engine) -> None:
    event = sample_event("MovieAcquired", 1, 0)
    event["metadata"]["session_id"] = f"not a visit {uuid.uuid4()}"
    with pytest.raises(RecordRejectedError, match=r"is not a visit|has no BLSession"):
        make_sink(ispyb_engine).write([("MovieAcquired", event)])


def test_unknown_visit_is_parked_until_the_facility_creates_it(
    ispyb_engine: Engine, ispyb_admin: Engine, ispyb_database: IspybDatabase
) -> None:
    sink = make_sink(ispyb_engine)
    known = sample("MovieAcquired", 1, 0)
    unknown = sample("MovieAcquired", 1, 0, "cm49999-1")
    with pytest.raises(VisitNotFoundError, match="'cm49999-1' has no BLSession"):
        sink.write([("MovieAcquired", known), ("MovieAcquired", unknown)])
    assert counts(ispyb_database)["Movie"] == 0  # the whole transaction rolled back
    sink.write([("MovieAcquired", known)])  # the rest carries on
    added = counts(ispyb_database)
    assert (added["Movie"], added["BLSession"], added["Proposal"], added["Person"]) == (1, 0, 0, 0)
    register_visit(ispyb_admin, "cm49999-1")  # the facility creates the visit; the event is reinjected
    sink.write([("MovieAcquired", unknown)])
    assert counts(ispyb_database)["Movie"] == 2


def test_creating_visits_is_a_setting_for_the_demo(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    create_tables(engine)
    event = sample("MovieAcquired", 1, 0)
    with pytest.raises(VisitNotFoundError):
        make_sink(engine).write([("MovieAcquired", event)])
    make_sink(engine, create_visits=True).write([("MovieAcquired", event)])
    snapshot = table_snapshot(engine)
    assert [len(snapshot[t]) for t in ("Person", "Proposal", "BLSession", "Movie")] == [1, 1, 1, 1]


def test_strings_longer_than_their_column_are_refused(
    ispyb_engine: Engine, ispyb_database: IspybDatabase
) -> None:
    sink = make_sink(ispyb_engine)
    event = sample("MovieAcquired", 1, 0)
    name = "P" * 46  # the web view allows 128 characters; DataCollection.imagePrefix holds 45
    event["metadata"]["tilt_series_id"] = f"cm40000-1:{name}"
    with pytest.raises(RecordRejectedError, match=r"DataCollection\.imagePrefix holds 45 characters"):
        sink.write([("MovieAcquired", event)])
    event["metadata"]["tilt_series_id"] = f"cm40000-1:{name[:45]}"
    sink.write([("MovieAcquired", event)])
    assert counts(ispyb_database)["DataCollection"] == 1


def test_values_become_typed_records_at_the_sink_boundary(tmp_path: Path) -> None:
    """One conversion: a known record becomes its typed record, an unknown one is skipped, a value
    lacking a field is refused before anything is written, and the rest carries on."""
    value = sample("TomogramReconstructed", 1, 0)
    typed = sink_event("TomogramReconstructed", value)
    assert isinstance(typed, TomogramReconstructed)
    assert typed.tomogram.path == value["tomogram"]["path"]
    assert typed.tilt_alignments[0].acquisition_order == value["tilt_alignments"][0]["acquisition_order"]
    assert sink_event("TiltSeriesStatus", sample_event("TiltSeriesStatus", 1, 0)) is None
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'typed.sqlite'}")
    create_tables(engine)
    sink = make_sink(engine, create_visits=True)
    lacking = sample("MovieAcquired", 1, 1)
    del lacking["frame_count"]
    with pytest.raises(KeyError, match="frame_count"):
        sink.write([("MovieAcquired", sample("MovieAcquired", 1, 0)), ("MovieAcquired", lacking)])
    assert len(table_snapshot(engine)["Movie"]) == 0
    sink.write([("MovieAcquired", sample("MovieAcquired", 1, 0))])
    assert len(table_snapshot(engine)["Movie"]) == 1
