"""Fixtures for the ISPyB sink: real MariaDB and PostgreSQL servers for the session, SQLite in a file.

The servers run from Debian's packages (see ``.ci/run``) in a directory made by ``tempfile.mkdtemp`` (the
database accounts must be able to reach it, which pytest's private temporary directory does not allow).
Each test gets a fresh database of its own on the parametrised engine:

* ``mariadb``: Diamond's canonical schema (``shared/ispyb-database``, loaded once per session into a
  template, copied per test), strict SQL mode; the sink connects as the ``ispyb_processing`` role and
  readers as ``ispyb_ro_nopii``, never as an administrator;
* ``sqlite`` and ``postgresql``: the tables ``init-db`` builds from the ``ispyb`` package's models.

The facility's side (its administrator) registers the visit the samples use, ``cm40000-1``: the sink
does not create visits.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import BLSession, Person, Proposal
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.schema import SINK_TABLES, create_tables
from tiltstream.connectors.ispyb.sink import create_engine
from tiltstream.localdb import LocalDatabaseServer, LocalMariaDB, LocalPostgres
from tiltstream.localdb.canonical import CanonicalIspyb

DATABASES = ("sqlite", "mariadb", "postgresql")
VISIT = "cm40000-1"

Snapshot = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def database_root() -> Iterator[Path]:
    """A directory the database service accounts can reach, removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="tiltstream-test-db-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_server(database_root: Path) -> Iterator[LocalMariaDB]:
    """A MariaDB server for the whole session."""
    with LocalMariaDB(database_root / "mariadb") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(database_root: Path) -> Iterator[LocalPostgres]:
    """A PostgreSQL server for the whole session."""
    with LocalPostgres(database_root / "postgres") as server:
        yield server


def fresh_database(request: pytest.FixtureRequest, kind: str, directory: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database of ``kind``; drop it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'ispyb.sqlite'}"
        return
    server: LocalDatabaseServer = request.getfixturevalue(
        "mariadb_server" if kind == "mariadb" else "postgres_server"
    )
    name = f"t{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture(scope="session")
def canonical_ispyb(mariadb_server: LocalMariaDB) -> CanonicalIspyb:
    """The canonical schema's template database on the session's MariaDB (loaded once, then copied)."""
    canonical = CanonicalIspyb(mariadb_server)
    began = time.monotonic()
    canonical.build_template()
    print(f"canonical ISPyB template loaded in {time.monotonic() - began:.1f} s")
    return canonical


def register_visit(admin: Engine, visit: str = VISIT, microscope: str = "m02") -> int:
    """What the facility's user office does: a Person, Proposal and BLSession for ``visit``; its id."""
    code, number, visit_number = visit[:2], visit[2:].split("-")[0], int(visit.split("-")[1])

    def insert(db: sa.Connection, model: Any, **values: object) -> int:
        key = db.execute(sa.insert(model.__table__).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    with admin.begin() as db:
        person = insert(db, Person, login=f"pi-{code}{number}", familyName="PI")
        proposal = insert(
            db, Proposal, personId=person, proposalCode=code, proposalNumber=number, title="tomo"
        )
        return insert(db, BLSession, proposalId=proposal, visit_number=visit_number, beamLineName=microscope)


@dataclass
class IspybDatabase:
    """A test's ISPyB: the sink's URL, a read-only reader's, and the facility administrator's."""

    kind: str
    url: str
    reader_url: str
    admin_url: str
    baseline: Snapshot = field(default_factory=dict)

    def new_rows(self) -> Snapshot:
        """Every sink-table row the test added (the schema's own test data left out)."""
        engine = create_engine(self.admin_url)
        try:
            now = table_snapshot(engine)
        finally:
            engine.dispose()
        added: Snapshot = {}
        for table, rows in now.items():
            before = Counter(self.baseline.get(table, []))
            added[table] = [r for r in rows if not _take(before, r)]
        return added


def _take(counter: Counter[tuple[Any, ...]], row: tuple[Any, ...]) -> bool:
    if counter[row] > 0:
        counter[row] -= 1
        return True
    return False


def make_database(request: pytest.FixtureRequest, kind: str, directory: Path) -> Iterator[IspybDatabase]:
    """A database of ``kind`` with the sink's tables (canonical on MariaDB) and the sample visit."""
    if kind == "mariadb":
        canonical: CanonicalIspyb = request.getfixturevalue("canonical_ispyb")
        name = f"c{uuid.uuid4().hex[:12]}"
        canonical.create(name)
        database = IspybDatabase(
            kind,
            canonical.url(name, canonical.sink),
            canonical.url(name, canonical.reader),
            canonical.url(name),
        )
    else:
        generator = fresh_database(request, kind, directory)
        url = next(generator)
        database = IspybDatabase(kind, url, url, url)
        engine = create_engine(url)
        create_tables(engine)
        engine.dispose()
    admin = create_engine(database.admin_url)
    register_visit(admin)
    database.baseline = table_snapshot(admin)
    admin.dispose()
    yield database
    if kind == "mariadb":
        canonical.server.drop_database(name)
    else:
        next(generator, None)


@pytest.fixture(params=DATABASES)
def ispyb_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IspybDatabase]:
    """A database on SQLite, PostgreSQL or (canonical) MariaDB; the test runs on each."""
    yield from make_database(request, str(request.param), tmp_path)


@pytest.fixture
def ispyb_engine(ispyb_database: IspybDatabase) -> Iterator[Engine]:
    """The sink's engine on :func:`ispyb_database` (the processing role on MariaDB)."""
    engine = create_engine(ispyb_database.url)
    yield engine
    engine.dispose()


@pytest.fixture
def ispyb_admin(ispyb_database: IspybDatabase) -> Iterator[Engine]:
    """The facility administrator's engine on :func:`ispyb_database` (to look at every table)."""
    engine = create_engine(ispyb_database.admin_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=DATABASES)
def ispyb_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database on SQLite, MariaDB or PostgreSQL (the test runs on each)."""
    yield from fresh_database(request, str(request.param), tmp_path)


def table_snapshot(engine: Engine) -> Snapshot:
    """Every row of every sink table, sorted, with binary values as bytes: comparable across runs."""
    snapshot: Snapshot = {}
    metadata = sa.MetaData()
    with engine.connect() as connection:
        for name in SINK_TABLES:
            table = sa.Table(name, metadata, autoload_with=connection)
            rows = connection.execute(sa.select(table)).all()
            snapshot[name] = sorted(
                (tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows), key=repr
            )
    return snapshot
