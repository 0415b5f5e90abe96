"""The life cycle both local database servers share: state directory, port, password, start, wait, stop.

Layout of a state directory::

    port          the TCP port chosen at the first start (kept across restarts, for outage tests)
    password      the application user's password (mode 0600)
    server.log    the server's log
    data/         the server's data directory, initialised once
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from tiltstream.localdb.common import (
    LocalDatabaseError,
    check_reachable,
    chown_tree,
    free_port,
    port_open,
    read_log_tail,
    signal_and_wait,
)
from tiltstream.log import get_logger

__all__ = ["LocalDatabaseServer"]

_log = get_logger(__name__)


class LocalDatabaseServer(ABC):
    """A database server of our own on loopback, with one application user and its databases.

    Parameters
    ----------
    state_dir
        Where everything lives; created if missing. When we are root it is given to the service account.
    port
        TCP port; 0 picks a free one at the first start and keeps it afterwards.
    database
        The database :attr:`url` points at (created at start).
    user
        The application user's name.
    host
        Loopback address to listen on.
    start_timeout_seconds
        How long :meth:`start` waits for the server to accept connections.
    """

    #: Name of the server program (what ``/proc/<pid>/cmdline`` starts with).
    program: str
    #: The Debian service account the server runs as when we are root.
    service_user: str
    #: The signal that asks for a clean, fast shutdown.
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int = 0,
        database: str = "ispyb",
        user: str = "tiltstream",
        host: str = "127.0.0.1",
        start_timeout_seconds: float = 60.0,
    ) -> None:
        self.state_dir = state_dir.expanduser().resolve()
        self.data_dir = self.state_dir / "data"
        self.log_file = self.state_dir / "server.log"
        self.database = database
        self.user = user
        self.host = host
        self.start_timeout_seconds = start_timeout_seconds
        self._requested_port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._started_here = False
        self.startup_seconds: float | None = None
        """Seconds the last :meth:`start` took, initialisation included."""

    # -- what each server does differently --------------------------------------------------------

    @abstractmethod
    def _initialise(self) -> None:
        """Create the data directory (first start only)."""

    @abstractmethod
    def _launch(self) -> None:
        """Start the server process in the background (set ``self._process`` if it is our child)."""

    @abstractmethod
    def _ready(self) -> bool:
        """Whether the server answers a query now."""

    @abstractmethod
    def _bootstrap(self) -> None:
        """Create the application user and :attr:`database` (idempotent)."""

    @abstractmethod
    def create_database(self, name: str) -> str:
        """Create database ``name`` owned by the application user if missing; return its SQLAlchemy URL."""

    @abstractmethod
    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists."""

    @abstractmethod
    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL (with the password) of ``database`` over TCP."""

    @property
    @abstractmethod
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""

    # -- shared -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (chosen and recorded at the first start when the constructor said 0)."""
        recorded = self.state_dir / "port"
        if recorded.is_file():
            return int(recorded.read_text().strip())
        if self._requested_port:
            return self._requested_port
        raise LocalDatabaseError("the port is chosen at the first start, and the server has not started")

    @property
    def password(self) -> str:
        """The application user's password (generated at the first start)."""
        return (self.state_dir / "password").read_text().strip()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of :attr:`database`."""
        return self.url_for(self.database)

    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self.pid is not None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        return read_log_tail(self.log_file, lines)

    def start(self) -> bool:
        """Initialise (first time), launch, wait until it accepts connections, create user and database.

        Returns
        -------
        bool
            ``True`` when it was launched, ``False`` when it was already running.

        Raises
        ------
        LocalDatabaseError
            When a binary is missing, the port is taken, or the server exits or is not ready in time.
        """
        if self.is_running():
            return False
        began = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        check_reachable(self.state_dir)
        port_file = self.state_dir / "port"
        if not port_file.is_file():
            port_file.write_text(f"{self._requested_port or free_port(self.host)}\n")
        password_file = self.state_dir / "password"
        if not password_file.is_file():
            password_file.write_text(secrets.token_hex(12) + "\n")
            password_file.chmod(0o600)
        if port_open(self.host, self.port):
            raise LocalDatabaseError(f"port {self.host}:{self.port} is already in use")
        if not self.data_dir.is_dir():
            self.data_dir.mkdir(mode=0o700)
            chown_tree(self.state_dir, self.service_user)
            self._initialise()
        chown_tree(self.state_dir, self.service_user)
        self._launch()
        self._started_here = True
        self._wait_ready(began + self.start_timeout_seconds)
        self._bootstrap()
        self.startup_seconds = time.monotonic() - began
        _log.info(
            "database server started",
            server=type(self).__name__,
            port=self.port,
            pid=self.pid,
            seconds=round(self.startup_seconds, 2),
        )
        return True

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None and not self.is_running():
                raise LocalDatabaseError(
                    f"{self.program} exited with status {self._process.returncode}; log:\n{self.log_tail()}"
                )
            if port_open(self.host, self.port) and self._ready():
                return
            time.sleep(0.1)
        raise LocalDatabaseError(f"{self.program} was not ready in time; log:\n{self.log_tail()}")

    def stop(self, timeout_seconds: float = 30.0) -> bool:
        """Ask the server to shut down cleanly (by pid), waiting for it; SIGKILL after ``timeout_seconds``.

        Returns
        -------
        bool
            ``True`` when a running server was stopped.
        """
        pid = self.pid
        if pid is None:
            return False
        clean = signal_and_wait(pid, self.program, self.stop_signal, timeout_seconds, self._process)
        if self._process is not None:
            self._process.poll()
            self._process = None
        self._started_here = False
        _log.info("database server stopped", server=type(self).__name__, pid=pid, clean=clean)
        return True

    def __enter__(self) -> Self:
        """Start the server (or join it when it runs already)."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server if this object started it."""
        if self._started_here:
            self.stop()
