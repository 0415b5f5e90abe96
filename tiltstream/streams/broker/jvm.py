"""Kafka's JVM for the local broker: its command line, the storage formatter, the launch, and its log.

The broker runs as a detached ``java`` process in its own session, with standard output and standard
error appended to ``kafka.log``, which is rotated once (to ``kafka.log.1``) past 20 MiB.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from tiltstream.streams.broker.status import BrokerError

__all__ = ["format_storage", "java_command", "launch", "read_log_tail", "rotate_log"]

_LOG_ROTATE_BYTES = 20 * 1024 * 1024
_OUTPUT_TAIL_CHARS = 4000


def java_command(java: str, libs: Path, *, heap: int, state_dir: Path, log4j_file: Path) -> list[str]:
    """Return the JVM and its flags, up to (not including) the main class.

    Parameters
    ----------
    java
        The ``java`` executable.
    libs
        The directory holding Kafka's jars (the class path is everything in it).
    heap
        The maximum heap, in MiB.
    state_dir
        The broker's state directory (``kafka.logs.dir``).
    log4j_file
        The ``log4j2.properties`` to configure logging with.
    """
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
        f"-Dkafka.logs.dir={state_dir}",
        f"-Dlog4j2.configurationFile={log4j_file}",
        "-cp",
        f"{libs}{os.sep}*",
    ]


def format_storage(
    jvm: list[str], cluster_id: str, *, config_file: Path, state_dir: Path, data_dir: Path
) -> None:
    """Format ``data_dir`` with ``cluster_id`` (``kafka.tools.StorageTool format``).

    Parameters
    ----------
    jvm
        The JVM and its flags, from :func:`java_command`.
    cluster_id
        The new cluster's id (see :func:`~tiltstream.streams.broker.config.kafka_cluster_id`).
    config_file
        The broker's ``server.properties``, which names ``data_dir`` as its ``log.dirs``.
    state_dir
        The working directory to run the tool in.
    data_dir
        The directory being formatted (named in the error message).

    Raises
    ------
    BrokerError
        When the tool fails, with the tail of its output.
    """
    command = [
        *jvm,
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        cluster_id,
        "-c",
        str(config_file),
    ]
    result = subprocess.run(command, cwd=state_dir, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-_OUTPUT_TAIL_CHARS:]
        raise BrokerError(f"formatting {data_dir} failed (status {result.returncode}):\n{tail}")


def launch(command: list[str], *, cwd: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` detached (its own session), appending its output to ``log_file``.

    Parameters
    ----------
    command
        The full command line.
    cwd
        The working directory.
    log_file
        Where standard output and standard error go (appended).

    Returns
    -------
    subprocess.Popen
        The child process.
    """
    with log_file.open("ab") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def rotate_log(log_file: Path) -> None:
    """Keep one previous log (``<name>.1``) once ``log_file`` passes 20 MiB."""
    with contextlib.suppress(OSError):
        if log_file.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(log_file, log_file.with_name(log_file.name + ".1"))


def read_log_tail(log_file: Path, lines: int) -> str:
    """Return the last ``lines`` lines of ``log_file`` (empty when there is none)."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * max(lines, 1)))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
