"""The local database servers: start, connect, stop by pid, start again on the same data and port."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tiltstream.localdb import LocalDatabaseError, LocalDatabaseServer, LocalMariaDB, LocalPostgres
from tiltstream.localdb.common import find_binary


@pytest.mark.parametrize("server_class", [LocalMariaDB, LocalPostgres])
def test_stop_and_start_keeps_data_and_port(
    server_class: type[LocalDatabaseServer], database_root: Path
) -> None:
    server = server_class(database_root / f"restart-{server_class.__name__}")
    with server:
        port, pid = server.port, server.pid
        assert pid is not None
        engine = sa.create_engine(server.url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE kept (x INTEGER)"))
            connection.execute(sa.text("INSERT INTO kept VALUES (41), (42)"))
        engine.dispose()
        assert server.stop()
        assert not server.is_running()
        assert not Path(f"/proc/{pid}").exists() or server.pid is None
        assert server.start()
        assert not server.start()  # already running: a no-op
        assert server.port == port
        engine = sa.create_engine(server.url)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT SUM(x) FROM kept")).scalar_one() == 83
        engine.dispose()
    assert not server.is_running()


def test_more_databases_on_one_server(postgres_server: LocalPostgres) -> None:
    url = postgres_server.create_database("second_db")
    assert url.endswith("/second_db")
    assert postgres_server.create_database("second_db") == url  # idempotent
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT current_database()")).scalar_one() == "second_db"
    engine.dispose()
    postgres_server.drop_database("second_db")
    with pytest.raises(LocalDatabaseError):
        postgres_server.create_database("no; drop")


def test_missing_binary_names_the_package() -> None:
    with pytest.raises(LocalDatabaseError, match="mariadb-server"):
        find_binary("no-such-database-server", "/nonexistent/*/bin")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the directory to a service account")
def test_unreachable_state_directory_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(LocalDatabaseError, match="not searchable"):
        LocalMariaDB(private / "db").start()
