"""Run the pipeline's services as child processes: start, watch, restart on a crash, stop gracefully.

``tiltstream up`` and ``tiltstream demo`` use it to run every service on one machine. Each service is
a real ``tiltstream`` command in its own process (as it would be in its own pod), with its output in a
log file. A service that exits unexpectedly is restarted with backoff a bounded number of times; stopping
sends SIGTERM to all (so each drains its current job and commits), then SIGKILL to any that outlive
the timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tiltstream.log import get_logger

__all__ = ["ServiceSpec", "ServiceState", "Supervisor"]

log = get_logger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """A service to run: a name, its command line and extra environment variables."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ServiceState:
    """What the supervisor knows about one service."""

    spec: ServiceSpec
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    exit_code: int | None = None
    failed: bool = False
    next_start: float = 0.0

    @property
    def running(self) -> bool:
        """True while its process is alive."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the current process, if any."""
        return self.process.pid if self.process is not None else None


class Supervisor:
    """Start, watch and stop a set of services.

    Parameters
    ----------
    specs
        The services.
    log_dir
        Each service writes ``<name>.log`` here.
    max_restarts
        Restarts allowed per service before it is marked failed.
    stop_timeout_seconds
        How long a service may take to drain after SIGTERM.
    """

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        log_dir: Path,
        *,
        max_restarts: int = 3,
        stop_timeout_seconds: float = 30.0,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.states = [ServiceState(spec, log_dir / f"{spec.name}.log") for spec in specs]
        self.max_restarts = max_restarts
        self.stop_timeout_seconds = stop_timeout_seconds
        self.stopping = False

    def _launch(self, state: ServiceState) -> None:
        env = {**os.environ, **state.spec.env}
        with state.log_file.open("ab") as out:
            state.process = subprocess.Popen(
                list(state.spec.argv), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        state.exit_code = None
        log.info("service started", service=state.spec.name, pid=state.process.pid, restarts=state.restarts)

    def start(self) -> None:
        """Start every service."""
        for state in self.states:
            self._launch(state)

    def check(self) -> list[ServiceState]:
        """Notice exits and restart crashed services (with backoff); returns the states."""
        now = time.monotonic()
        for state in self.states:
            if state.process is None or state.failed or self.stopping:
                continue
            code = state.process.poll()
            if code is None:
                continue
            if state.exit_code is None:
                state.exit_code = code
                log.warning(
                    "service exited", service=state.spec.name, exit_code=code, log_file=str(state.log_file)
                )
                if state.restarts >= self.max_restarts:
                    state.failed = True
                    log.error("service failed for good", service=state.spec.name, restarts=state.restarts)
                    continue
                state.next_start = now + min(2.0**state.restarts, 30.0)
            if now >= state.next_start:
                state.restarts += 1
                self._launch(state)
        return self.states

    def state(self, name: str) -> ServiceState:
        """The state of the service called ``name``."""
        for state in self.states:
            if state.spec.name == name:
                return state
        raise KeyError(f"no service {name!r}; there are {[s.spec.name for s in self.states]}")

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send ``sig`` to the service's process group (a crash, when SIGKILL); :meth:`check` restarts it.

        Returns the pid that was signalled.
        """
        state = self.state(name)
        if state.process is None or not state.running:
            raise RuntimeError(f"service {name!r} is not running")
        pid = state.process.pid
        os.killpg(pid, sig)
        log.warning("service signalled", service=name, pid=pid, signal=sig.name)
        return pid

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """Stop the service gracefully and start it again, with ``env`` merged into its settings.

        What an operator does after fixing a service's configuration; not counted as a crash restart.
        """
        state = self.state(name)
        if state.running:
            self._terminate([state])
        if env:
            state.spec = replace(state.spec, env={**state.spec.env, **env})
        state.failed = False
        self._launch(state)

    def _terminate(self, states: Sequence[ServiceState]) -> None:
        """SIGTERM ``states``, wait for them to drain, SIGKILL those still running after the timeout."""
        for state in states:
            assert state.process is not None
            os.killpg(state.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_seconds
        for state in states:
            assert state.process is not None
            try:
                state.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("service did not stop in time; killing it", service=state.spec.name)
                os.killpg(state.process.pid, signal.SIGKILL)
                state.process.wait(timeout=10)
            state.exit_code = state.process.returncode

    def stop(self) -> None:
        """SIGTERM every service, wait for them to drain, SIGKILL those still running after the timeout."""
        self.stopping = True
        self._terminate([s for s in self.states if s.running])
