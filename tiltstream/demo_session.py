"""A live session end to end on one machine: broker, topics, every service, a simulated microscope.

Used by ``tiltstream demo`` and by the end-to-end test. Sizes are small (512² movies, 11 tilts) so a
two- or three-position session finishes in a few minutes on two CPU cores.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiltstream.pipeline import PipelineLayout, pipeline_services
from tiltstream.pipeline_view import TERMINAL_STATES, SeriesSummary, summarise_session
from tiltstream.settings import KafkaSettings, LocalBrokerSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.streams.schema_topic import schema_aware_serde
from tiltstream.streams.status_view import pipeline_groups, series_statuses
from tiltstream.supervisor import Supervisor

__all__ = ["DEMO_SETTINGS", "DemoOptions", "run_demo_session"]

#: Settings for small CPU-only demo data: permissive exclusion limits, short timeouts, small patches.
DEMO_SETTINGS: dict[str, str] = {
    "TILTSTREAM_TOPICS_PARTITIONS": "3",
    "TILTSTREAM_MOTIONCORR_DEVICE": "cpu",
    "TILTSTREAM_CTF_DEVICE": "cpu",
    "TILTSTREAM_RECONSTRUCT_DEVICE": "cpu",
    "TILTSTREAM_DENOISE_DEVICE": "cpu",
    "TILTSTREAM_MOTIONCORR_PATCHES_X": "1",
    "TILTSTREAM_MOTIONCORR_PATCHES_Y": "1",
    "TILTSTREAM_DENOISE_PATCH_SIZE_PIXELS": "32",
    "TILTSTREAM_DENOISE_PADDING_PIXELS": "8",
    "TILTSTREAM_AGGREGATOR_MIN_USABLE_TILTS": "5",
    "TILTSTREAM_AGGREGATOR_MAX_TOTAL_MOTION_ANGSTROMS": "1000",
    "TILTSTREAM_AGGREGATOR_MAX_CTF_FIT_RESOLUTION_ANGSTROMS": "100",
    "TILTSTREAM_AGGREGATOR_GRACE_SECONDS": "240",
    "TILTSTREAM_AGGREGATOR_STANDBY_REPLICAS": "0",
    "TILTSTREAM_AGGREGATOR_SESSION_TIMEOUT_SECONDS": "10",
    "TILTSTREAM_LOG_FORMAT": "json",
}


@dataclass(frozen=True)
class DemoOptions:
    """How big the simulated session is and where everything goes."""

    workdir: Path
    positions: int = 2
    size_pixels: int = 512
    frames: int = 5
    max_tilt_degrees: float = 30.0
    step_degrees: float = 6.0
    rate_movies_per_second: float = 2.0
    session_id: str = "cm40000-1"
    database_url: str | None = None
    timeout_seconds: float = 900.0
    seed: int = 1

    @property
    def tilts(self) -> int:
        """Tilts per series of the simulated scheme."""
        return 2 * round(self.max_tilt_degrees / self.step_degrees) + 1


def run_demo_session(
    options: DemoOptions,
    on_progress: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[SeriesSummary]]:
    """Run a whole session; return every series' final status and the session summary.

    The broker runs in ``workdir/broker`` and stops at the end (its data stay for inspection).
    """
    work = options.workdir
    if work.exists():
        shutil.rmtree(work)
    raw, processed, logs = work / "raw", work / "processed", work / "logs"
    session_dir = raw / options.session_id
    for folder in (session_dir, processed, logs):
        folder.mkdir(parents=True)
    database_url = options.database_url or f"sqlite:///{work / 'ispyb.sqlite'}"
    broker = LocalBroker(LocalBrokerSettings(state_dir=work / "broker", port=0, controller_port=0))
    broker.start()
    supervisor: Supervisor | None = None
    simulator: subprocess.Popen[bytes] | None = None
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        catalogue = Catalogue(TopicSettings(partitions=int(DEMO_SETTINGS["TILTSTREAM_TOPICS_PARTITIONS"])))
        apply_topics(create_admin(kafka), catalogue.all_topics())
        env = {**DEMO_SETTINGS, "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
        cli = [sys.executable, "-m", "tiltstream.cli"]
        init = subprocess.run(
            [*cli, "sink", "ispyb", "init-db", "--url", database_url],
            capture_output=True,
            env={**_environ(), **env},
        )
        if init.returncode != 0:
            raise RuntimeError(f"init-db failed: {init.stderr.decode(errors='replace')[-2000:]}")
        layout = PipelineLayout(
            session_dir=session_dir,
            raw_root=raw,
            processed_root=processed,
            state_dir=work,
            bootstrap_servers=kafka.bootstrap_servers,
            database_url=database_url,
            session_id=options.session_id,
            metrics_base_port=0,
            tilts_per_series=options.tilts,
            extra_env=env,
        )
        supervisor = Supervisor(pipeline_services(layout), logs)
        supervisor.start()
        if on_ready:
            on_ready(kafka.bootstrap_servers)
        simulate = [
            *cli,
            "simulate",
            str(session_dir),
            "--positions",
            str(options.positions),
            "--size",
            str(options.size_pixels),
            "--frames",
            str(options.frames),
            "--max-tilt",
            str(options.max_tilt_degrees),
            "--step",
            str(options.step_degrees),
            "--rate",
            str(options.rate_movies_per_second),
            "--session-id",
            options.session_id,
            "--seed",
            str(options.seed),
            "--start-time",
            "now",
        ]
        with (logs / "simulate.log").open("wb") as out:
            simulator = subprocess.Popen(
                simulate, stdout=out, stderr=subprocess.STDOUT, env={**_environ(), **env}
            )
        serde = schema_aware_serde(kafka, catalogue)
        deadline = time.monotonic() + options.timeout_seconds
        statuses: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            supervisor.check()
            statuses = series_statuses(kafka, catalogue, serde)
            if on_progress:
                on_progress(statuses)
            done = len(statuses) >= options.positions and all(
                s["state"] in TERMINAL_STATES for s in statuses.values()
            )
            if done and simulator.poll() is not None:
                break
            time.sleep(2.0)
        _wait_for_sink(kafka, catalogue, deadline)
        return statuses, summarise_session(kafka, catalogue, serde)
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.terminate()
            simulator.wait(30)
        if supervisor is not None:
            supervisor.stop()
        broker.stop()


def _wait_for_sink(kafka: KafkaSettings, catalogue: Catalogue, deadline: float) -> None:
    """Give the ISPyB sink the time to write what the pipeline produced (its group's lag reaches 0)."""
    admin = create_admin(kafka)
    group = "tiltstream-ispyb-sink"
    while time.monotonic() < deadline:
        lags = pipeline_groups(admin, catalogue, group)
        if lags and lags[0].partitions and lags[0].lag == 0:
            return
        time.sleep(1.0)


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
