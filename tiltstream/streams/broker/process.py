"""Ports and processes for the local broker: choosing free ports, port probes, pid checks, signals.

A broker's pid file can outlive its process and the pid be reused, so :func:`is_broker_process` checks
the process's command line (``/proc/<pid>/cmdline``, or ``ps`` where there is no procfs) rather than
only that the pid exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tiltstream.streams.broker.status import BrokerError

__all__ = [
    "choose_ports",
    "free_ports",
    "is_broker_process",
    "port_free",
    "port_open",
    "send_signal",
    "wait_exit",
]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(host: str, *ports: int) -> tuple[int, ...]:
    """Replace each 0 in ``ports`` with a distinct port that is free on ``host`` right now.

    Parameters
    ----------
    host
        The address to bind on.
    *ports
        Port numbers; each 0 among them is replaced, the others are kept as they are.

    Returns
    -------
    tuple of int
        The ports, in the order given.
    """
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


def choose_ports(host: str, port: int, controller: int, previous: tuple[int, int] | None) -> tuple[int, int]:
    """Return (broker, controller) ports: the ones given, or free ones where they are 0.

    Parameters
    ----------
    host
        The address the broker binds to.
    port, controller
        The settings' broker and controller ports; 0 means "pick a free one".
    previous
        The ports of the previous start, re-used for a 0 while they are still free, so that a port-0
        broker keeps its address across restarts when it can.

    Returns
    -------
    tuple of (int, int)
        The broker and controller ports.

    Raises
    ------
    BrokerError
        When a port is already in use.
    """
    if previous is not None:
        port = port or (previous[0] if port_free(host, previous[0]) else 0)
        controller = controller or (previous[1] if port_free(host, previous[1]) else 0)
    port, controller = free_ports(host, port, controller)
    for number, name in ((port, "broker"), (controller, "controller")):
        if not port_free(host, number):
            raise BrokerError(f"the {name} port {host}:{number} is already in use")
    return port, controller


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


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


def is_broker_process(pid: int, config_file: Path) -> bool:
    """Whether ``pid`` is a live ``java … kafka.Kafka <config_file>`` process."""
    argv = _command_line(pid)
    if not argv:
        return False
    return Path(argv[0]).name.startswith("java") and "kafka.Kafka" in argv and str(config_file) in argv


def wait_exit(
    child: subprocess.Popen[bytes] | None, pid: int, config_file: Path, timeout: float, poll_seconds: float
) -> bool:
    """Wait up to ``timeout`` seconds for broker ``pid`` to exit.

    Parameters
    ----------
    child
        The broker process when this Python process started it (it is waited for, and so reaped),
        else ``None``.
    pid
        The broker's process id.
    config_file
        Its ``server.properties``, which identifies it (see :func:`is_broker_process`).
    timeout
        Seconds to wait.
    poll_seconds
        Seconds between checks of a process that is not ``child``.

    Returns
    -------
    bool
        Whether it exited in time.
    """
    if child is not None and child.pid == pid:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while is_broker_process(pid, config_file):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_seconds)
    return True


def send_signal(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to ``pid``, ignoring a process that has just gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
