"""What the local broker reports: :class:`BrokerStatus` snapshots, and :class:`BrokerError` on failure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrokerError", "BrokerStatus"]


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
