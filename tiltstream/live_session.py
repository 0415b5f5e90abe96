"""A live session on one machine, step by step: broker, topics, every service, then the microscope.

:func:`~tiltstream.demo_session.run_demo_session` runs one from start to end. The recovery tests drive one
by hand through :class:`LiveSession`: they wait for a point in the session, crash a service or restart the
broker, fix a service's settings, and then wait for the session to finish.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tiltstream.pipeline import PipelineLayout, pipeline_services
from tiltstream.pipeline_view import TERMINAL_STATES
from tiltstream.settings import KafkaSettings, LocalBrokerSettings, TopicSettings
from tiltstream.stages import REGISTRY, laid_out_topics
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer
from tiltstream.streams.reader import StartAt, read_events, watermarks_with_retry
from tiltstream.streams.schema_topic import schema_aware_serde
from tiltstream.streams.serde import AvroSerde
from tiltstream.streams.status_view import pipeline_groups, series_statuses
from tiltstream.supervisor import ServiceSpec, Supervisor

__all__ = ["DEMO_SETTINGS", "DemoOptions", "LiveSession", "SessionTimeoutError"]

#: Settings for small CPU-only demo data: short timeouts, small patches. The exclusion limits are the
#: defaults (motion <= 50 Å, CTF fit <= 20 Å: issue 21), only the least usable tilts follows the demo's
#: size (11 tilts per series, 7 in the end-to-end test, where the default asks for 10).
DEMO_SETTINGS: dict[str, str] = {
    "TILTSTREAM_TOPICS_PARTITIONS": "3",
    **{f"{stage.env_prefix}DEVICE": "cpu" for stage in REGISTRY.stages()},
    "TILTSTREAM_MOTIONCORR_PATCHES_X": "1",
    "TILTSTREAM_MOTIONCORR_PATCHES_Y": "1",
    "TILTSTREAM_DENOISE_PATCH_SIZE_PIXELS": "32",
    "TILTSTREAM_DENOISE_PADDING_PIXELS": "8",
    "TILTSTREAM_AGGREGATOR_MIN_USABLE_TILTS": "5",
    "TILTSTREAM_AGGREGATOR_GRACE_SECONDS": "240",
    "TILTSTREAM_AGGREGATOR_STANDBY_REPLICAS": "0",
    "TILTSTREAM_AGGREGATOR_SESSION_TIMEOUT_SECONDS": "10",
    "TILTSTREAM_LOG_FORMAT": "json",
    "TILTSTREAM_ISPYB_CREATE_VISITS": "true",  # the demo's own database: no facility creates its visit
}

#: The ISPyB sink's consumer group (its lag tells when the database has caught up).
SINK_GROUP = REGISTRY.service("ispyb-sink").group


class SessionTimeoutError(TimeoutError):
    """The session did not reach the awaited point in time; the message says which point."""


@dataclass(frozen=True)
class DemoOptions:
    """How big the simulated session is and where everything goes.

    ``extra_env`` overrides :data:`DEMO_SETTINGS` for every service (``TILTSTREAM_*`` variables).
    ``transfer``: the microscope writes to ``workdir/detector`` and the watcher copies each movie into
    ``workdir/raw`` (checksummed) before announcing it, the path a facility's detector disk takes.
    ``more_sessions`` are further ``(microscope, session id)`` pairs acquired at the same time as
    ``session_id`` on ``microscope``, each by its own simulated microscope and watcher, the same size.
    ``create_tables`` runs ``sink ispyb init-db`` first: off for a facility's database, whose schema (the
    canonical one) exists and whose processing role may not create tables.
    """

    workdir: Path
    positions: int = 2
    size_pixels: int = 512
    frames: int = 5
    max_tilt_degrees: float = 30.0
    step_degrees: float = 6.0
    rate_movies_per_second: float = 2.0
    session_id: str = "cm40000-1"
    microscope: str = "m01"
    more_sessions: tuple[tuple[str, str], ...] = ()
    create_tables: bool = True
    database_url: str | None = None
    timeout_seconds: float = 900.0
    seed: int = 1
    transfer: bool = False
    web_port: int = 8080
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def tilts(self) -> int:
        """Tilts per series of the simulated scheme."""
        return 2 * round(self.max_tilt_degrees / self.step_degrees) + 1

    @property
    def sessions(self) -> tuple[tuple[str, str], ...]:
        """Every ``(microscope, session id)`` of the run, the first one's first."""
        return ((self.microscope, self.session_id), *self.more_sessions)

    @property
    def env(self) -> dict[str, str]:
        """Every service's ``TILTSTREAM_*`` settings (without the cluster's address)."""
        return {**DEMO_SETTINGS, **self.extra_env}


class LiveSession:
    """Broker, topics, database and every service of a session in ``options.workdir``; a context manager.

    Entering starts the broker, lays out the topics, creates the database tables and starts the services;
    :meth:`acquire` starts the simulated microscope. Leaving stops the microscope, drains the services and
    stops the broker (its data stay in ``workdir/broker`` for inspection).
    """

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        work = options.workdir
        self.raw, self.processed, self.logs = work / "raw", work / "processed", work / "logs"
        self.detector = work / "detector" if options.transfer else None
        self.microscope_root = self.detector or self.raw  # where the simulated microscopes write
        self.session_dir = self.microscope_root / options.session_id
        self.database_url = options.database_url or f"sqlite:///{work / 'ispyb.sqlite'}"
        self.broker = LocalBroker(LocalBrokerSettings(state_dir=work / "broker", port=0, controller_port=0))
        self.catalogue = Catalogue(TopicSettings(partitions=int(options.env["TILTSTREAM_TOPICS_PARTITIONS"])))
        self.supervisor: Supervisor | None = None
        self.simulator: subprocess.Popen[bytes] | None = None
        self.simulators: list[subprocess.Popen[bytes]] = []  # every session's, the first one's first
        self.kafka = KafkaSettings()
        self._serde: AvroSerde | None = None
        self._counter: Consumer | None = None
        self.deadline = time.monotonic() + options.timeout_seconds

    # -- start and stop ---------------------------------------------------------------------------

    def __enter__(self) -> LiveSession:
        work = self.options.workdir
        if work.exists():
            shutil.rmtree(work)
        sessions = (self.microscope_root / s for _, s in self.options.sessions)
        for folder in (*sessions, self.raw, self.processed, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            self.broker.start()
            self.kafka = KafkaSettings(bootstrap_servers=self.broker.bootstrap_servers)
            apply_topics(create_admin(self.kafka), laid_out_topics(self.catalogue))
            if self.options.create_tables:
                self._cli("sink", "ispyb", "init-db", "--url", self.database_url)
            layout = PipelineLayout(
                session_dir=self.session_dir,
                raw_root=self.raw,
                processed_root=self.processed,
                state_dir=work,
                bootstrap_servers=self.kafka.bootstrap_servers,
                database_url=self.database_url,
                session_id=self.options.session_id,
                microscope=self.options.microscope,
                metrics_base_port=0,
                tilts_per_series=self.options.tilts,
                detector_root=self.detector,
                extra_env=self.env,
            )
            self.supervisor = Supervisor(
                [*pipeline_services(layout), *self._more_watchers(layout)], self.logs
            )
            self.supervisor.start()
        except BaseException:
            self.close()
            raise
        return self

    def _more_watchers(self, layout: PipelineLayout) -> list[ServiceSpec]:
        """A watcher ``watch-<session id>`` for each of ``options.more_sessions``."""
        watchers = []
        for microscope, session_id in self.options.more_sessions:
            other = replace(
                layout,
                session_dir=self.microscope_root / session_id,
                session_id=session_id,
                microscope=microscope,
            )
            watch = pipeline_services(other)[0]
            watchers.append(replace(watch, name=f"watch-{session_id}"))
        return watchers

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the microscope, drain every service, stop the broker."""
        for simulator in self.simulators:
            if simulator.poll() is None:
                simulator.terminate()
                simulator.wait(30)
        if self._counter is not None:
            self._counter.close()
            self._counter = None
        if self.supervisor is not None:
            self.supervisor.stop()
        self.broker.stop()

    @property
    def env(self) -> dict[str, str]:
        """The settings every service and command of this session gets."""
        return {**self.options.env, "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers}

    @property
    def services(self) -> Supervisor:
        """The running services."""
        if self.supervisor is None:
            raise RuntimeError("the session has not started")
        return self.supervisor

    @property
    def serde(self) -> AvroSerde:
        """A serde that learns new writers' schemas from the schemas topic."""
        if self._serde is None:
            self._serde = schema_aware_serde(self.kafka, self.catalogue)
        return self._serde

    def acquire(self) -> None:
        """Start each session's simulated microscope (seeds ``seed``, ``seed + 1`` …).

        The first one's output goes to ``logs/simulate.log``, the others' to
        ``logs/simulate-<session id>.log``.
        """
        o = self.options
        for index, (microscope, session_id) in enumerate(o.sessions):
            simulate = [
                "simulate", str(self.microscope_root / session_id), "--positions", str(o.positions),
                "--size", str(o.size_pixels), "--frames", str(o.frames),
                "--max-tilt", str(o.max_tilt_degrees), "--step", str(o.step_degrees),
                "--rate", str(o.rate_movies_per_second), "--session-id", session_id,
                "--microscope", microscope, "--seed", str(o.seed + index), "--start-time", "now",
            ]  # fmt: skip
            log = "simulate.log" if index == 0 else f"simulate-{session_id}.log"
            with (self.logs / log).open("wb") as out:
                self.simulators.append(
                    subprocess.Popen(
                        [*_tiltstream(), *simulate], stdout=out, stderr=subprocess.STDOUT, env=self._environ()
                    )
                )
        self.simulator = self.simulators[0]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``tiltstream ARGS`` against this session's cluster; its output is returned as text."""
        return subprocess.run(
            [*_tiltstream(), *args], capture_output=True, text=True, env=self._environ(), timeout=300
        )

    def _cli(self, *args: str) -> None:
        done = self.run(*args)
        if done.returncode != 0:
            raise RuntimeError(f"tiltstream {' '.join(args)} failed: {done.stderr[-2000:]}")

    def _environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    # -- watch --------------------------------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every series' latest status (restarting crashed services on the way)."""
        self.services.check()
        return series_statuses(self.kafka, self.catalogue, self.serde)

    def values(self, suffix: str) -> list[dict[str, Any]]:
        """Every decodable event the topic ``<prefix>.<suffix>`` holds now, in partition order."""
        topic = self.catalogue.topic(suffix)
        found = read_events(self.kafka, [topic], start=StartAt.BEGINNING, serde=self.serde)
        return [event.value for event in found if event.value is not None]

    def count(self, suffix: str) -> int:
        """How many events the topic ``<prefix>.<suffix>`` holds (duplicates and reprocessing included)."""
        if self._counter is None:
            self._counter = create_consumer(self.kafka, "tiltstream-live-session-counter")
        topic = self.catalogue.topic(suffix)
        total = 0
        for partition in range(topic.partitions):
            low, high = watermarks_with_retry(self._counter, TopicPartition(topic.name, partition), 10.0)
            total += high - low
        return total

    def stage_counts(self) -> dict[str, tuple[int, int]]:
        """Per stage, how far the session is: ``(done, expected)`` movies or tilt series.

        Written movies are counted on the microscope's disk; the rest are the stages' events on their
        topics (redeliveries are capped at what is expected).
        """
        series = self.options.positions * len(self.options.sessions)
        movies = series * self.options.tilts
        folders = [self.microscope_root / s / "frames" for _, s in self.options.sessions]
        written = sum(  # the movies: not the gain reference beside them, nor partial copies
            not p.name.startswith((".", "CountRef_")) for f in folders if f.is_dir() for p in f.iterdir()
        )
        counts = {"written by the microscope": (written, movies)}
        announced = "transferred and announced" if self.detector else "announced"
        stages = [
            (announced, "movie.acquired", movies),
            ("motion-corrected", "movie.motion-corrected", movies),
            ("CTF estimated", "micrograph.ctf-estimated", movies),
            ("reconstructed", "tomogram.reconstructed", series),
            ("denoised", "tomogram.denoised", series),
        ]
        for name, suffix, expected in stages:
            counts[name] = (min(self.count(suffix), expected), expected)
        return counts

    def finished(self, statuses: Mapping[str, Mapping[str, Any]]) -> bool:
        """Every series of every session has reached a terminal state and the microscopes are done."""
        return (
            len(statuses) >= self.options.positions * len(self.options.sessions)
            and all(s["state"] in TERMINAL_STATES for s in statuses.values())
            and all(simulator.poll() is not None for simulator in self.simulators)
        )

    def wait_until(self, what: str, condition: Callable[[], bool], poll_seconds: float = 1.0) -> None:
        """Poll ``condition`` (restarting crashed services) until it holds; past the deadline, raise."""
        while time.monotonic() < self.deadline:
            self.services.check()
            if condition():
                return
            time.sleep(poll_seconds)
        raise SessionTimeoutError(f"timed out waiting for: {what}; service logs in {self.logs}")

    def sink_caught_up(self) -> bool:
        """The ISPyB sink has written everything on its topics (its group's lag is 0)."""
        lags = pipeline_groups(create_admin(self.kafka), self.catalogue, SINK_GROUP)
        return bool(lags and lags[0].partitions and lags[0].lag == 0)


def _tiltstream() -> list[str]:
    return [sys.executable, "-m", "tiltstream.cli"]
