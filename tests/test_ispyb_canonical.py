"""The sink on Diamond's canonical ISPyB schema, as the least-privilege processing role, in strict mode."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from ispyb_fixtures import IspybDatabase, make_database
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.errors import SinkConfigurationError
from tiltstream.connectors.ispyb.probe import probe_schema
from tiltstream.connectors.ispyb.samples import sample
from tiltstream.connectors.ispyb.schema import SchemaMismatchError, check_schema
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.localdb.canonical import CanonicalIspyb


@pytest.fixture
def canonical(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IspybDatabase]:
    yield from make_database(request, "mariadb", tmp_path)


@pytest.fixture
def sink_engine(canonical: IspybDatabase) -> Iterator[Engine]:
    engine = create_engine(canonical.url)
    yield engine
    engine.dispose()


def test_template_is_built_as_the_readme_says(canonical_ispyb: CanonicalIspyb, sink_engine: Engine) -> None:
    template = canonical_ispyb.template
    assert canonical_ispyb.applied_updates  # the updates SchemaStatus did not record were run
    left = set(canonical_ispyb.missed_updates(template))
    # what is still "missed" is only what records itself under another name, or was already in tables.sql
    assert left <= set(canonical_ispyb.applied_updates) | set(canonical_ispyb.already_applied)
    with sink_engine.connect() as connection:
        mode = str(connection.execute(sa.text("SELECT @@SESSION.sql_mode")).scalar_one())
        assert "STRICT_TRANS_TABLES" in mode
        roles = str(connection.execute(sa.text("SELECT CURRENT_ROLE()")).scalar_one())
        assert roles == "ispyb_processing"


def test_the_processing_role_may_not_write_acquisition_tables(sink_engine: Engine) -> None:
    for statement in (
        "INSERT INTO DataCollectionGroup (sessionId, experimentType) VALUES (1, 'tomo')",
        "INSERT INTO BLSession (proposalId, visit_number) VALUES (1, 1)",
        "SELECT COUNT(*) FROM DataCollection",
    ):
        with sink_engine.connect() as connection, pytest.raises(sa.exc.OperationalError, match="denied"):
            connection.execute(sa.text(statement))


def test_probe_finds_the_version_and_the_columns_it_lacks(sink_engine: Engine) -> None:
    info = check_schema(sink_engine)
    assert info.canonical
    assert info.version is not None
    assert info.version[0].isdigit()
    assert not info.has("AutoProcProgram", "jobUuid")  # this snapshot predates them
    assert not info.has("Tomogram", "thickness")
    assert info.lengths["DataCollection.imageprefix"] == 45
    assert "Movie.nominalDefocus" in info.unsigned
    assert "without AutoProcProgram.jobUuid, Tomogram.thickness" in info.describe()


def test_a_schema_the_sink_does_not_know_is_refused_with_the_columns_it_missed(
    canonical: IspybDatabase,
) -> None:
    admin = create_engine(canonical.admin_url)
    with admin.begin() as connection:
        connection.execute(sa.text("ALTER TABLE CTF DROP COLUMN ccValue"))
        connection.execute(sa.text("ALTER TABLE Movie DROP COLUMN angle"))
        connection.execute(sa.text("DROP FUNCTION upsert_dcgroup"))
    admin.dispose()
    sink = IspybSink(IspybSinkSettings(database_url=canonical.url))
    with pytest.raises(SchemaMismatchError) as caught:
        sink.check()
    assert caught.value.missing == ["function upsert_dcgroup", "column Movie.angle", "column CTF.ccValue"]
    sink.engine.dispose()


def test_creating_visits_is_refused_on_the_canonical_schema(sink_engine: Engine) -> None:
    settings = IspybSinkSettings(database_url=str(sink_engine.url), create_visits=True)
    with pytest.raises(SinkConfigurationError, match="CREATE_VISITS"):
        IspybSink(settings, engine=sink_engine).write([("MovieAcquired", sample("MovieAcquired", 1, 0))])


def test_the_reader_sees_what_the_web_view_needs_and_writes_nothing(canonical: IspybDatabase) -> None:
    reader = create_engine(canonical.reader_url)
    info = probe_schema(reader, require=False)
    assert info.has("DataCollection", "imagePrefix")
    assert info.has("BLSession", "visit_number")
    with reader.connect() as connection, pytest.raises(sa.exc.OperationalError, match="denied"):
        connection.execute(sa.text(f"INSERT INTO ProcessingJob (comments) VALUES ('{uuid.uuid4()}')"))
    reader.dispose()
