"""A single-node KRaft Kafka (combined broker and controller) on loopback, for development and tests.

Everything lives in one state directory::

    server.properties   the broker's configuration, rewritten at every start
    log4j2.properties   logging to standard output, which goes to kafka.log
    kafka.log           the broker's log (rotated once to kafka.log.1 past 20 MiB)
    kafka.pid           the running broker's process id
    data/               log.dirs (and the KRaft metadata log), formatted once

The broker is a detached ``java`` process: it outlives the Python process that started it, so the CLI can
``start`` it and ``stop`` it from another invocation. Port 0 in the settings means "pick free ports at
start" (re-using the previous start's ports when they are still free).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tiltstream.log import get_logger
from tiltstream.settings import LocalBrokerSettings
from tiltstream.streams.broker.config import (
    address,
    kafka_cluster_id,
    recorded_ports,
    write_atomically,
    write_config,
)
from tiltstream.streams.broker.health import wait_for_metadata
from tiltstream.streams.broker.jvm import format_storage, java_command, launch, read_log_tail, rotate_log
from tiltstream.streams.broker.maven import fetch_kafka, require_executable
from tiltstream.streams.broker.process import choose_ports, is_broker_process, send_signal, wait_exit
from tiltstream.streams.broker.status import BrokerError, BrokerStatus

__all__ = ["BrokerError", "BrokerStatus", "LocalBroker", "kafka_cluster_id"]

_log = get_logger(__name__)

_POLL_SECONDS = 0.1


class LocalBroker:
    """One local Kafka broker, described by :class:`~tiltstream.settings.LocalBrokerSettings`.

    Parameters
    ----------
    settings
        Versions, directories, ports, heap, and the ``java``/``mvn`` commands.

    Examples
    --------
    >>> with LocalBroker(LocalBrokerSettings(port=0, controller_port=0)) as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap_servers)
    """

    def __init__(self, settings: LocalBrokerSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.expanduser().resolve()
        self.config_file = self.state_dir / "server.properties"
        self.log4j_file = self.state_dir / "log4j2.properties"
        self.log_file = self.state_dir / "kafka.log"
        self.pid_file = self.state_dir / "kafka.pid"
        self.data_dir = self.state_dir / "data"
        self.startup_seconds: float | None = None
        """Seconds from launching ``java`` to the first successful metadata request, once measured."""
        self._process: subprocess.Popen[bytes] | None = None
        self._ports: tuple[int, int] | None = None
        self._launched_at: float | None = None
        self._started_here = False

    # -- state ------------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the PLAINTEXT listener.

        Raises
        ------
        BrokerError
            When the settings ask for a free port (port 0) and no start has chosen one yet.
        """
        if self._ports is not None:
            return address(self.settings.host, self._ports[0])
        recorded = recorded_ports(self.config_file)
        if recorded is not None:
            return address(self.settings.host, recorded[0])
        if self.settings.port:
            return address(self.settings.host, self.settings.port)
        raise BrokerError("the broker's port is chosen when it starts (port 0), and it has not started yet")

    @property
    def pid(self) -> int | None:
        """The broker's process id when it is running, else ``None``."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._process is not None and self._process.pid == pid and self._process.poll() is not None:
            return None  # our own child has exited (and is now reaped)
        return pid if is_broker_process(pid, self.config_file) else None

    def is_running(self) -> bool:
        """Whether this state directory's broker process is alive."""
        return self.pid is not None

    def status(self) -> BrokerStatus:
        """Return a :class:`BrokerStatus` snapshot."""
        pid = self.pid
        try:
            bootstrap: str | None = self.bootstrap_servers
        except BrokerError:
            bootstrap = None
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap_servers=bootstrap,
            kafka_version=self.settings.kafka_version,
            state_dir=self.state_dir,
            log_file=self.log_file,
        )

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the broker's log (empty when there is none)."""
        return read_log_tail(self.log_file, lines)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Start the broker, formatting its storage first if needed.

        Parameters
        ----------
        wait
            Block until the broker answers a metadata request (see :meth:`wait_healthy`).
        timeout
            Seconds to wait; ``settings.start_timeout_seconds`` when omitted.

        Returns
        -------
        bool
            ``True`` when a broker was launched, ``False`` when one was already running (a no-op).

        Raises
        ------
        BrokerError
            When a port is taken, formatting fails, or the broker exits or is not healthy in time.
        KafkaFetchError
            When Kafka's jars cannot be fetched.
        """
        running = self.pid
        if running is not None:
            _log.info("kafka broker already running", pid=running, bootstrap_servers=self.bootstrap_servers)
            return False
        java = require_executable(self.settings.java, "to run the Kafka broker")
        libs = fetch_kafka(self.settings)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self._ports = self._choose_ports()
        write_config(
            self.config_file,
            self.log4j_file,
            host=self.settings.host,
            port=self._ports[0],
            controller_port=self._ports[1],
            data_dir=self.data_dir,
        )
        if not (self.data_dir / "meta.properties").is_file():
            self._format_storage(java, libs)
        rotate_log(self.log_file)
        command = [*self._java_command(java, libs), "kafka.Kafka", str(self.config_file)]
        self._process = launch(command, cwd=self.state_dir, log_file=self.log_file)
        self._launched_at = time.monotonic()
        self._started_here = True
        write_atomically(self.pid_file, f"{self._process.pid}\n")
        _log.info(
            "kafka broker launched",
            pid=self._process.pid,
            kafka_version=self.settings.kafka_version,
            bootstrap_servers=self.bootstrap_servers,
        )
        if wait:
            self.wait_healthy(timeout)
        return True

    def wait_healthy(self, timeout: float | None = None) -> float:
        """Block until the broker answers a metadata request (``AdminClient.list_topics``).

        Parameters
        ----------
        timeout
            Seconds to wait; ``settings.start_timeout_seconds`` when omitted.

        Returns
        -------
        float
            Seconds this call waited.

        Raises
        ------
        BrokerError
            When the broker process exits (with the log's tail) or the timeout passes.
        """
        timeout = self.settings.start_timeout_seconds if timeout is None else timeout
        began = time.monotonic()
        deadline = began + timeout
        bootstrap = self.bootstrap_servers
        if not wait_for_metadata(
            bootstrap,
            host=self.settings.host,
            port=int(bootstrap.rsplit(":", 1)[1]),
            deadline=deadline,
            check=self._raise_if_exited,
            poll_seconds=_POLL_SECONDS,
        ):
            raise BrokerError(
                f"the broker was not healthy within {timeout:.0f} s; log tail:\n{self.log_tail()}"
            )
        waited = time.monotonic() - began
        if self._launched_at is not None:
            self.startup_seconds = time.monotonic() - self._launched_at
        _log.info(
            "kafka broker healthy", waited_seconds=round(waited, 2), startup_seconds=self.startup_seconds
        )
        return waited

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the broker: SIGTERM, then SIGKILL after ``timeout`` seconds; remove the pid file.

        Parameters
        ----------
        timeout
            Seconds to wait for a clean shutdown; ``settings.stop_timeout_seconds`` when omitted.

        Returns
        -------
        bool
            ``True`` when a running broker was stopped, ``False`` when none was running.
        """
        timeout = self.settings.stop_timeout_seconds if timeout is None else timeout
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self._reap()
            return False
        began = time.monotonic()
        send_signal(pid, signal.SIGTERM)
        if not wait_exit(self._process, pid, self.config_file, timeout, _POLL_SECONDS):
            _log.warning("kafka broker did not stop in time; killing it", pid=pid, timeout=timeout)
            send_signal(pid, signal.SIGKILL)
            if not wait_exit(self._process, pid, self.config_file, 10.0, _POLL_SECONDS):
                raise BrokerError(f"broker process {pid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        self._reap()
        self._started_here = False
        _log.info("kafka broker stopped", pid=pid, seconds=round(time.monotonic() - began, 2))
        return True

    def __enter__(self) -> Self:
        """Start the broker (or join a running one) and wait until it is healthy."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the broker, if this object started it."""
        if self._started_here:
            self.stop()

    # -- helpers ----------------------------------------------------------------------------------

    def _choose_ports(self) -> tuple[int, int]:
        """Return (broker, controller) ports: the settings', or free ones where the settings say 0."""
        settings = self.settings
        return choose_ports(
            settings.host, settings.port, settings.controller_port, recorded_ports(self.config_file)
        )

    def _java_command(self, java: str, libs: Path, *, heap_megabytes: int | None = None) -> list[str]:
        """The JVM and its flags, up to (not including) the main class."""
        heap = heap_megabytes or self.settings.heap_megabytes
        return java_command(java, libs, heap=heap, state_dir=self.state_dir, log4j_file=self.log4j_file)

    def _format_storage(self, java: str, libs: Path) -> None:
        """Format ``data/`` with a fresh cluster id (``kafka.tools.StorageTool format``)."""
        cluster_id = kafka_cluster_id()
        format_storage(
            self._java_command(java, libs, heap_megabytes=256),
            cluster_id,
            config_file=self.config_file,
            state_dir=self.state_dir,
            data_dir=self.data_dir,
        )
        _log.info("kafka storage formatted", cluster_id=cluster_id, data_dir=str(self.data_dir))

    def _raise_if_exited(self) -> None:
        """Raise :class:`BrokerError` with the log's tail if the broker process has gone."""
        if self._process is not None:
            status = self._process.poll()
            if status is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(f"the broker exited with status {status}; log tail:\n{self.log_tail()}")
        elif not self.is_running():
            raise BrokerError(f"the broker is not running; log tail:\n{self.log_tail()}")

    def _reap(self) -> None:
        """Collect our child's exit status, if we have a child."""
        if self._process is not None:
            self._process.poll()
            self._process = None
