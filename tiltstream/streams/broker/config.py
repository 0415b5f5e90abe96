"""The local broker's configuration: ``server.properties``, ``log4j2.properties``, and cluster ids.

:func:`write_config` writes both files for a combined broker and controller on loopback, and
:func:`recorded_ports` reads back the ports the last ``server.properties`` chose.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

__all__ = [
    "address",
    "kafka_cluster_id",
    "recorded_ports",
    "write_atomically",
    "write_config",
]

_NODE_ID = 1

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


def address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_config(
    config_file: Path,
    log4j_file: Path,
    *,
    host: str,
    port: int,
    controller_port: int,
    data_dir: Path,
) -> None:
    """Write ``server.properties`` and ``log4j2.properties`` for the chosen ports.

    Parameters
    ----------
    config_file
        Where ``server.properties`` goes.
    log4j_file
        Where ``log4j2.properties`` goes.
    host
        The loopback host every listener binds to.
    port
        The PLAINTEXT (broker) port.
    controller_port
        The CONTROLLER port.
    data_dir
        The broker's ``log.dirs``.
    """
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(_NODE_ID),
        "controller.quorum.voters": f"{_NODE_ID}@{address(host, controller_port)}",
        "listeners": f"PLAINTEXT://{address(host, port)},CONTROLLER://{address(host, controller_port)}",
        "advertised.listeners": f"PLAINTEXT://{address(host, port)}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
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
    write_atomically(config_file, "# Written by tiltstream's LocalBroker; rewritten at start.\n" + body)
    write_atomically(log4j_file, _LOG4J2_PROPERTIES)


def recorded_ports(config_file: Path) -> tuple[int, int] | None:
    """Return the (broker, controller) ports written into ``config_file``, if it exists and names them.

    Parameters
    ----------
    config_file
        A ``server.properties`` written by :func:`write_config`.

    Returns
    -------
    tuple of (int, int) or None
        The PLAINTEXT and CONTROLLER ports, or ``None`` when the file is missing or incomplete.
    """
    try:
        lines = config_file.read_text().splitlines()
    except OSError:
        return None
    values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    try:
        broker = int(values["advertised.listeners"].rsplit(":", 1)[1])
        controller = int(values["controller.quorum.voters"].rsplit(":", 1)[1])
    except (KeyError, IndexError, ValueError):
        return None
    return broker, controller
