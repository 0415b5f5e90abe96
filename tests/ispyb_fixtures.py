"""Fixtures for the ISPyB sink: real MariaDB and PostgreSQL servers for the session, SQLite in a file.

The servers run from Debian's packages (see ``.ci/run``) in a directory made by ``tempfile.mkdtemp`` (the
database accounts must be able to reach it, which pytest's private temporary directory does not allow).
Each test gets a fresh database of its own on the parametrised engine.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.schema import SINK_TABLES, create_tables
from tiltstream.connectors.ispyb.sink import create_engine
from tiltstream.localdb import LocalDatabaseServer, LocalMariaDB, LocalPostgres

DATABASES = ("sqlite", "mariadb", "postgresql")


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


@pytest.fixture(params=DATABASES)
def ispyb_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database on SQLite, MariaDB or PostgreSQL (the test runs on each)."""
    yield from fresh_database(request, str(request.param), tmp_path)


@pytest.fixture
def ispyb_engine(ispyb_url: str) -> Iterator[Engine]:
    """An engine on an empty database holding the sink's tables."""
    engine = create_engine(ispyb_url)
    create_tables(engine)
    yield engine
    engine.dispose()


def table_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every sink table, sorted, with binary values as bytes: comparable across runs."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    metadata = sa.MetaData()
    with engine.connect() as connection:
        for name in SINK_TABLES:
            table = sa.Table(name, metadata, autoload_with=connection)
            rows = connection.execute(sa.select(table)).all()
            snapshot[name] = sorted(
                (tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows), key=repr
            )
    return snapshot
