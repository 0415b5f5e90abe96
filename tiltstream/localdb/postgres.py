"""A PostgreSQL server of our own, from Debian's ``postgresql`` package, for tests and benchmarks.

``initdb`` creates the cluster once; ``pg_ctl`` starts the postmaster detached, listening on loopback and
on a socket in the state directory. PostgreSQL never runs as root: when we are root, ``initdb`` and
``pg_ctl`` run as the ``postgres`` account (``runuser -u postgres --``) and the state directory is its.
The superuser ``postgres`` is trusted on the socket; the application user has a password over TCP.
Debian keeps the programs in ``/usr/lib/postgresql/<version>/bin``; the newest version found is used.
"""

from __future__ import annotations

import signal
import subprocess

from tiltstream.localdb.common import LocalDatabaseError, find_binary, pid_alive, run_as
from tiltstream.localdb.server import LocalDatabaseServer

__all__ = ["LocalPostgres"]

_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class LocalPostgres(LocalDatabaseServer):
    """A local PostgreSQL (see :class:`~tiltstream.localdb.server.LocalDatabaseServer` for parameters).

    Examples
    --------
    >>> with LocalPostgres(Path(tempfile.mkdtemp())) as server:  # doctest: +SKIP
    ...     engine = sqlalchemy.create_engine(server.url)
    """

    program = "postgres"
    service_user = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, do not wait for clients

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs, else ``None``."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid, self.program) else None

    def url_for(self, database: str) -> str:
        """``postgresql+psycopg2://`` URL of ``database`` for the application user over TCP."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def _initialise(self) -> None:
        run_as(
            self.service_user,
            [
                find_binary("initdb", _BIN_GLOB),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            cwd=self.state_dir,
        )

    def _launch(self) -> None:
        options = f"-p {self.port} -k {self.state_dir} -c listen_addresses={self.host} -c max_connections=200"
        run_as(
            self.service_user,
            [
                find_binary("pg_ctl", _BIN_GLOB),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(int(self.start_timeout_seconds)),
                "start",
            ],
            cwd=self.state_dir,
            timeout=self.start_timeout_seconds + 10,
        )

    def _admin(self, *statements: str, database: str = "postgres") -> str:
        """Run each statement on its own (``CREATE DATABASE`` refuses transactions) as the superuser."""
        command = [
            find_binary("psql", _BIN_GLOB),
            "-h",
            str(self.state_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
        ]
        for statement in statements:
            command += ["-c", statement]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise LocalDatabaseError(f"psql exited with status {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def _ready(self) -> bool:
        try:
            return self._admin("SELECT 1").strip() == "1"
        except LocalDatabaseError:
            return False

    def _bootstrap(self) -> None:
        password = self.password
        exists = self._admin(f"SELECT 1 FROM pg_roles WHERE rolname = '{self.user}'").strip()
        verb = "ALTER" if exists else "CREATE"
        self._admin(f"{verb} ROLE {self.user} LOGIN PASSWORD '{password}'")
        self.create_database(self.database)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (UTF-8) owned by the application user if missing; return its URL."""
        _check_name(name)
        if not self._admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            self._admin(f"CREATE DATABASE \"{name}\" OWNER {self.user} ENCODING 'UTF8'")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists (closing its connections)."""
        _check_name(name)
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check_name(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise LocalDatabaseError(f"database names are letters, digits and underscores: {name!r}")
