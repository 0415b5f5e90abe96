"""A MariaDB server of our own, from Debian's ``mariadb-server`` package, for tests and benchmarks.

``mariadb-install-db`` creates the data directory once (about a second); ``mariadbd`` then runs detached
with no option files (``--no-defaults``), listening on loopback and on a socket in the state directory.
Run by root it is started with ``--user=mysql`` (it refuses root otherwise). The administrator is
``root`` over the socket; the application user has a password and reaches the server over TCP.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tiltstream.localdb.common import (
    LocalDatabaseError,
    find_binary,
    is_root,
    pid_alive,
)
from tiltstream.localdb.server import LocalDatabaseServer

__all__ = ["LocalMariaDB"]


class LocalMariaDB(LocalDatabaseServer):
    """A local ``mariadbd`` (see :class:`~tiltstream.localdb.server.LocalDatabaseServer` for parameters).

    Examples
    --------
    >>> with LocalMariaDB(Path(tempfile.mkdtemp())) as server:  # doctest: +SKIP
    ...     engine = sqlalchemy.create_engine(server.url)
    """

    program = "mariadbd"
    service_user = "mysql"

    @property
    def socket_path(self) -> Path:
        """The server's Unix socket (used by the administrator)."""
        return self.state_dir / "mariadb.sock"

    @property
    def pid_file(self) -> Path:
        """Where ``mariadbd`` writes its process id."""
        return self.state_dir / "mariadb.pid"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            if self._process is not None and self._process.poll() is None:
                return self._process.pid
            return None
        return pid if pid_alive(pid, self.program) else None

    def url_for(self, database: str) -> str:
        """``mysql+pymysql://`` URL of ``database`` for the application user over TCP."""
        return (
            f"mysql+pymysql://{self.user}:{self.password}@{self.host}:{self.port}/{database}?charset=utf8mb4"
        )

    def _initialise(self) -> None:
        install = find_binary("mariadb-install-db", "/usr/bin")
        command = [
            install,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if is_root():
            command.append("--user=mysql")
        done = subprocess.run(command, cwd=self.state_dir, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalDatabaseError(f"mariadb-install-db failed:\n{done.stdout}{done.stderr}")

    def _launch(self) -> None:
        command = [
            find_binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.pid_file}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--log-error={self.log_file}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=128M",
            "--max-connections=200",
        ]
        if is_root():
            command.append("--user=mysql")
        self.pid_file.unlink(missing_ok=True)
        with open(self.state_dir / "mariadbd.out", "ab") as out:
            self._process = subprocess.Popen(  # detached: it outlives a CLI invocation
                command,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _client(self, database: str | None) -> list[str]:
        client = find_binary("mariadb", "/usr/bin")
        return [client, "--no-defaults", f"--socket={self.socket_path}", "-uroot", "-N", "-B"] + (
            [f"--database={database}"] if database else []
        )

    def _admin(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` as the administrator over the socket and return the tab-separated result."""
        return _run([*self._client(database), "-e", sql])

    def execute(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` (statements separated by ``;``) as the administrator; return the tab-separated rows."""
        return self._admin(sql, database)

    def execute_file(self, path: Path, database: str) -> None:
        """Feed the SQL file ``path`` to the ``mariadb`` client as the administrator, in ``database``.

        Raises
        ------
        LocalDatabaseError
            With the client's message (``ERROR 1060 (42S21) at line 3: ...``) when a statement fails.
        """
        with path.open("rb") as sql:
            done = subprocess.run(
                self._client(database), stdin=sql, capture_output=True, timeout=600, check=False
            )
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip()
            raise LocalDatabaseError(f"{path.name}: {message}")

    def _ready(self) -> bool:
        try:
            return self._admin("SELECT 1").strip() == "1"
        except LocalDatabaseError:
            return False

    def _bootstrap(self) -> None:
        password = self.password
        self._admin(
            f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{password}';"
            f"ALTER USER '{self.user}'@'%' IDENTIFIED BY '{password}';"
        )
        self.create_database(self.database)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (utf8mb4) for the application user if missing; return its URL."""
        _check_name(name)
        self._admin(
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
            f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{self.user}'@'%';"
        )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists."""
        _check_name(name)
        self._admin(f"DROP DATABASE IF EXISTS `{name}`;")


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LocalDatabaseError(f"{command[0]} exited with status {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _check_name(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise LocalDatabaseError(f"database names are letters, digits and underscores: {name!r}")
