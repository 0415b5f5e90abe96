"""What the local database servers share: finding binaries, running as the service user, pids, ports.

Debian's database servers refuse to run as root (``mariadbd`` without ``--user``, PostgreSQL at all), so a
server started by root runs as the package's service account (``mysql``, ``postgres``) and its state
directory is handed over to that account. That account must be able to reach the directory: every parent
must be searchable by others (pytest's private ``/tmp/pytest-of-root`` is not, so use ``tempfile.mkdtemp``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

__all__ = [
    "LocalDatabaseError",
    "check_reachable",
    "chown_tree",
    "find_binary",
    "free_port",
    "is_root",
    "pid_alive",
    "port_open",
    "read_log_tail",
    "run_as",
    "service_user_prefix",
    "signal_and_wait",
]


class LocalDatabaseError(RuntimeError):
    """A local database server could not be set up, started or stopped."""


def is_root() -> bool:
    """Whether this process runs as root (and so must hand the server to a service account)."""
    return os.geteuid() == 0


def find_binary(name: str, *extra_globs: str) -> str:
    """The path of executable ``name``: on ``PATH``, in ``/usr/sbin``, or in the newest ``extra_globs`` match.

    Parameters
    ----------
    name
        Program name, e.g. ``mariadbd`` or ``initdb``.
    *extra_globs
        Directory patterns to look in as well, e.g. ``/usr/lib/postgresql/*/bin``; the highest version
        (by natural sort of the matches) wins.

    Raises
    ------
    LocalDatabaseError
        When it is nowhere (naming the Debian package to install).
    """
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found:
        return found
    candidates: list[Path] = []
    for pattern in extra_globs:
        candidates += [Path(d) / name for d in glob.glob(pattern)]
    candidates = [c for c in candidates if os.access(c, os.X_OK)]
    if candidates:

        def version(path: Path) -> tuple[int, ...]:
            return tuple(int(p) for p in path.parts if p.isdigit())

        return str(max(candidates, key=version))
    raise LocalDatabaseError(
        f"{name} was not found (install Debian's mariadb-server and postgresql packages: "
        "apt-get install mariadb-server postgresql)"
    )


def service_user_prefix(user: str) -> list[str]:
    """The command prefix that runs a program as ``user`` when we are root (``runuser``), else nothing."""
    if not is_root():
        return []
    try:
        pwd.getpwnam(user)
    except KeyError as exc:
        raise LocalDatabaseError(f"there is no {user!r} account (is the Debian package installed?)") from exc
    return [find_binary("runuser"), "-u", user, "--"]


def run_as(user: str, command: list[str], *, cwd: Path, timeout: float = 120.0) -> str:
    """Run ``command`` as ``user`` (when root) and return its output; raise with the output on failure."""
    full = [*service_user_prefix(user), *command]
    try:
        done = subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalDatabaseError(f"{' '.join(command)} failed: {exc}") from exc
    if done.returncode != 0:
        raise LocalDatabaseError(
            f"{' '.join(command)} exited with status {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def check_reachable(directory: Path) -> None:
    """Raise unless every parent of ``directory`` is searchable by other users (when we are root)."""
    if not is_root():
        return
    for parent in directory.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise LocalDatabaseError(
                f"the database's service account cannot reach {directory}: {parent} is not searchable "
                "by others (chmod o+x it, or put the state directory under one made by tempfile.mkdtemp)"
            )


def chown_tree(directory: Path, user: str) -> None:
    """Give ``directory`` and everything in it to ``user`` (only when we are root)."""
    if not is_root():
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(directory):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def free_port(host: str) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((host, 0))
        return int(holder.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int, program: str) -> bool:
    """Whether ``pid`` is a live (non-zombie) process whose program name contains ``program``."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    state = status.rsplit(")", 1)[1].split()[0]
    return state != "Z" and program in Path(argv0).name


def signal_and_wait(
    pid: int,
    program: str,
    signum: signal.Signals,
    timeout_seconds: float,
    child: subprocess.Popen[bytes] | None,
) -> bool:
    """Send ``signum`` to ``pid`` and wait up to ``timeout_seconds`` for it to exit; SIGKILL after that.

    Returns
    -------
    bool
        Whether it exited cleanly (without the SIGKILL).
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    for clean, wait_seconds in ((True, timeout_seconds), (False, 10.0)):
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if child is not None:
                child.poll()
            if not pid_alive(pid, program):
                return clean
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    raise LocalDatabaseError(f"{program} process {pid} survived SIGKILL")


def read_log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a server log (empty when there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
