"""The supervisor runs real child processes: restart on crash (bounded), graceful stop with SIGTERM."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tiltstream.supervisor import ServiceSpec, Supervisor

GRACEFUL = """
import pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])
def stop(signum, frame):
    marker.write_text("drained")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def test_crashing_service_is_restarted_then_given_up(tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    crash = (
        f"import pathlib; p = pathlib.Path({str(counter)!r}); "
        "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); raise SystemExit(3)"
    )
    supervisor = Supervisor(
        [ServiceSpec("crashy", [sys.executable, "-c", crash])], tmp_path / "logs", max_restarts=2
    )
    supervisor.start()
    deadline = time.monotonic() + 30
    while not supervisor.states[0].failed and time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.1)
    state = supervisor.states[0]
    assert state.failed
    assert state.restarts == 2
    assert state.exit_code == 3
    assert counter.read_text() == "xxx"  # the first start and two restarts
    supervisor.stop()


def test_stop_drains_services_with_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    supervisor = Supervisor(
        [ServiceSpec("steady", [sys.executable, "-c", GRACEFUL, str(marker)], env={"TILTSTREAM_X": "1"})],
        tmp_path / "logs",
    )
    supervisor.start()
    log_file = supervisor.states[0].log_file
    deadline = time.monotonic() + 20
    while "ready" not in (log_file.read_text() if log_file.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.states[0].running
    supervisor.check()
    assert supervisor.states[0].restarts == 0
    supervisor.stop()
    assert marker.read_text() == "drained"
    assert supervisor.states[0].exit_code == 0
    assert not supervisor.states[0].running


def test_stubborn_service_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = "\n".join(
        [
            "import signal, time",
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
            "print('up', flush=True)",
            "time.sleep(60)",
        ]
    )
    supervisor = Supervisor(
        [ServiceSpec("stubborn", [sys.executable, "-c", stubborn])],
        tmp_path / "logs",
        stop_timeout_seconds=1.0,
    )
    supervisor.start()
    log_file = supervisor.states[0].log_file
    deadline = time.monotonic() + 20
    while "up" not in (log_file.read_text() if log_file.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - started < 15
    assert supervisor.states[0].exit_code == -9


ENV_ECHO = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
print("setting", os.environ.get("TILTSTREAM_X"), os.getpid(), flush=True)
while True:
    time.sleep(0.1)
"""


def _wait_for_lines(log_file: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 20
    lines: list[str] = []
    while len(lines) < count and time.monotonic() < deadline:
        lines = [line for line in (log_file.read_text() if log_file.exists() else "").splitlines() if line]
        time.sleep(0.05)
    return lines


def test_killed_service_is_restarted_and_restart_applies_new_settings(tmp_path: Path) -> None:
    supervisor = Supervisor(
        [ServiceSpec("echo", [sys.executable, "-c", ENV_ECHO], env={"TILTSTREAM_X": "bad"})],
        tmp_path / "logs",
    )
    supervisor.start()
    state = supervisor.state("echo")
    log_file = state.log_file
    first = _wait_for_lines(log_file, 1)
    assert first[0].startswith("setting bad ")
    killed = supervisor.kill("echo")
    assert first[0].split()[-1] == str(killed)
    deadline = time.monotonic() + 20
    while state.restarts == 0 and time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.05)
    assert state.exit_code is None  # running again
    second = _wait_for_lines(log_file, 2)
    assert second[1].startswith("setting bad ")
    assert second[1] != second[0]
    assert state.restarts == 1

    supervisor.restart("echo", env={"TILTSTREAM_X": "fixed"})  # an operator's fix: graceful, not a crash
    third = _wait_for_lines(log_file, 3)
    assert third[2].startswith("setting fixed ")
    assert state.restarts == 1
    supervisor.check()
    assert state.running
    assert not state.failed
    supervisor.stop()
    assert state.exit_code == 0
    with pytest.raises(KeyError, match="echo"):
        supervisor.state("nope")
