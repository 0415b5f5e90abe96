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

import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka.admin import AdminClient

from tiltstream.log import get_logger
from tiltstream.settings import LocalBrokerSettings
from tiltstream.streams.broker.maven import fetch_kafka, require_executable

__all__ = ["BrokerError", "BrokerStatus", "LocalBroker", "kafka_cluster_id"]

_log = get_logger(__name__)

_NODE_ID = 1
_LOG_ROTATE_BYTES = 20 * 1024 * 1024
_POLL_SECONDS = 0.1


class BrokerError(RuntimeError):
    """The local broker could not be started, did not become healthy, or could not be stopped."""


@dataclass(frozen=True)
class BrokerStatus:
    """A snapshot of the local broker.

    Attributes
    ----------
    running
        Whether the process named by the pid file is alive and is this state directory's broker.
    pid
        Its process id, when running.
    bootstrap_servers
        ``host:port`` of the PLAINTEXT listener, when known.
    kafka_version
        The Kafka version the settings ask for.
    state_dir
        The broker's state directory.
    log_file
        Where the broker writes its log.
    """

    running: bool
    pid: int | None
    bootstrap_servers: str | None
    kafka_version: str
    state_dir: Path
    log_file: Path


def kafka_cluster_id() -> str:
    """Return a fresh cluster id the way Kafka's ``Uuid.randomUuid`` makes one.

    A random (version 4) UUID, URL-safe base64 without padding (22 characters); Kafka rejects the zero
    and metadata-topic ids and any id starting with ``-`` and draws again, and so does this.
    """
    while True:
        raw = uuid.uuid4().bytes
        text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if not text.startswith("-") and int.from_bytes(raw, "big") > 1:
            return text


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
            return _address(self.settings.host, self._ports[0])
        recorded = self._recorded_ports()
        if recorded is not None:
            return _address(self.settings.host, recorded[0])
        if self.settings.port:
            return _address(self.settings.host, self.settings.port)
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
        return pid if _is_broker_process(pid, self.config_file) else None

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
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 256 * max(lines, 1)))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

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
        self._write_config(*self._ports)
        if not (self.data_dir / "meta.properties").is_file():
            self._format_storage(java, libs)
        self._rotate_log()
        command = [*self._java_command(java, libs), "kafka.Kafka", str(self.config_file)]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._launched_at = time.monotonic()
        self._started_here = True
        _write_atomically(self.pid_file, f"{self._process.pid}\n")
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
        host, port = self.settings.host, int(self.bootstrap_servers.rsplit(":", 1)[1])
        admin: AdminClient | None = None
        while True:
            self._raise_if_exited()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"the broker was not healthy within {timeout:.0f} s; log tail:\n{self.log_tail()}"
                )
            if admin is None and _port_open(host, port):
                admin = _health_client(self.bootstrap_servers)
            if admin is not None:
                try:
                    admin.list_topics(timeout=min(2.0, remaining))
                except Exception:  # KafkaException while the broker is still coming up
                    continue
                break
            time.sleep(_POLL_SECONDS)
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
        _signal(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            _log.warning("kafka broker did not stop in time; killing it", pid=pid, timeout=timeout)
            _signal(pid, signal.SIGKILL)
            if not self._wait_exit(pid, 10.0):
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
        host, port, controller = self.settings.host, self.settings.port, self.settings.controller_port
        previous = self._recorded_ports()
        if previous is not None:  # keep a port-0 broker's address stable across restarts when possible
            port = port or (previous[0] if _port_free(host, previous[0]) else 0)
            controller = controller or (previous[1] if _port_free(host, previous[1]) else 0)
        port, controller = _free_ports(host, port, controller)
        for number, name in ((port, "broker"), (controller, "controller")):
            if not _port_free(host, number):
                raise BrokerError(f"the {name} port {host}:{number} is already in use")
        return port, controller

    def _recorded_ports(self) -> tuple[int, int] | None:
        """The (broker, controller) ports written into the last ``server.properties``, if any."""
        try:
            lines = self.config_file.read_text().splitlines()
        except OSError:
            return None
        values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
        try:
            broker = int(values["advertised.listeners"].rsplit(":", 1)[1])
            controller = int(values["controller.quorum.voters"].rsplit(":", 1)[1])
        except (KeyError, IndexError, ValueError):
            return None
        return broker, controller

    def _write_config(self, port: int, controller_port: int) -> None:
        """Write ``server.properties`` and ``log4j2.properties`` for the chosen ports."""
        host = self.settings.host
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
            "controller.quorum.voters": f"{_NODE_ID}@{_address(host, controller_port)}",
            "listeners": f"PLAINTEXT://{_address(host, port)},CONTROLLER://{_address(host, controller_port)}",
            "advertised.listeners": f"PLAINTEXT://{_address(host, port)}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            # Single node: every internal topic has one replica; fewer offsets partitions make the first
            # consumer group on a fresh broker ready sooner.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A small machine: few threads.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
        }
        body = "".join(f"{key}={value}\n" for key, value in properties.items())
        _write_atomically(
            self.config_file, "# Written by tiltstream's LocalBroker; rewritten at start.\n" + body
        )
        _write_atomically(self.log4j_file, _LOG4J2_PROPERTIES)

    def _java_command(self, java: str, libs: Path, *, heap_megabytes: int | None = None) -> list[str]:
        """The JVM and its flags, up to (not including) the main class."""
        heap = heap_megabytes or self.settings.heap_megabytes
        return [
            java,
            f"-Xmx{heap}m",
            f"-Xms{min(heap, 256)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            "-Xshare:auto",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.state_dir}",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            f"{libs}{os.sep}*",
        ]

    def _format_storage(self, java: str, libs: Path) -> None:
        """Format ``data/`` with a fresh cluster id (``kafka.tools.StorageTool format``)."""
        cluster_id = kafka_cluster_id()
        command = [
            *self._java_command(java, libs, heap_megabytes=256),
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(self.config_file),
        ]
        result = subprocess.run(command, cwd=self.state_dir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-4000:]
            raise BrokerError(f"formatting {self.data_dir} failed (status {result.returncode}):\n{tail}")
        _log.info("kafka storage formatted", cluster_id=cluster_id, data_dir=str(self.data_dir))

    def _rotate_log(self) -> None:
        """Keep one previous log once the current one passes 20 MiB."""
        with contextlib.suppress(OSError):
            if self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(self.log_file, self.log_file.with_name(self.log_file.name + ".1"))

    def _raise_if_exited(self) -> None:
        """Raise :class:`BrokerError` with the log's tail if the broker process has gone."""
        if self._process is not None:
            status = self._process.poll()
            if status is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(f"the broker exited with status {status}; log tail:\n{self.log_tail()}")
        elif not self.is_running():
            raise BrokerError(f"the broker is not running; log tail:\n{self.log_tail()}")

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``pid`` to exit; return whether it did."""
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _is_broker_process(pid, self.config_file):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def _reap(self) -> None:
        """Collect our child's exit status, if we have a child."""
        if self._process is not None:
            self._process.poll()
            self._process = None


_LOG4J2_PROPERTIES = """\
# Written by tiltstream's LocalBroker: everything to standard output, which the launcher sends to kafka.log.
status = warn
name = tiltstream-local-broker
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""


def _address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_ports(host: str, *ports: int) -> tuple[int, ...]:
    """Replace each 0 in ``ports`` with a distinct port that is free on ``host`` right now."""
    with contextlib.ExitStack() as stack:
        chosen = []
        for port in ports:
            if port:
                chosen.append(port)
                continue
            holder = stack.enter_context(socket.socket(_family(host), socket.SOCK_STREAM))
            holder.bind((host, 0))
            chosen.append(int(holder.getsockname()[1]))
        return tuple(chosen)


def _port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _health_client(bootstrap_servers: str) -> AdminClient:
    """An admin client that retries quickly and does not log closed connections, for health checks."""
    return AdminClient(
        {
            "bootstrap.servers": bootstrap_servers,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 250,
            "socket.connection.setup.timeout.ms": 2000,
            "log.connection.close": False,
        }
    )


def _command_line(pid: int) -> list[str] | None:
    """The argument vector of process ``pid``, or ``None`` when it does not exist (or is a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
        return _command_line_from_ps(pid)  # no procfs (macOS)
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None


def _command_line_from_ps(pid: int) -> list[str] | None:
    """The command line of ``pid`` according to ``ps`` (split on spaces), for systems without procfs."""
    try:
        output = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return None
    return output.split() or None


def _is_broker_process(pid: int, config_file: Path) -> bool:
    """Whether ``pid`` is a live ``java … kafka.Kafka <config_file>`` process."""
    argv = _command_line(pid)
    if not argv:
        return False
    return Path(argv[0]).name.startswith("java") and "kafka.Kafka" in argv and str(config_file) in argv


def _signal(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to ``pid``, ignoring a process that has just gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
