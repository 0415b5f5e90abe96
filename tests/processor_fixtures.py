"""A pure-Python stand-in processor and helpers for the runtime's tests (no torch).

The stub consumes ``MovieAcquired`` and emits ``MovieMotionCorrected``. Each "movie" is a small JSON
file of instructions: ``sleep_seconds`` (a long job), ``transient_failures`` (fail that many attempts
with a TransientError), ``corrupt`` (raise CorruptInputError). Every attempt appends a line to
``<processed>/attempts/<movie_id>``, so tests can count executions across processes.

Run as a script it is a real service process (``python tests/processor_fixtures.py``) configured by
``TILTSTREAM_STUB_*`` variables, for the SIGTERM and SIGKILL tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydantic_settings import SettingsConfigDict

from tiltstream.processors.runtime import (
    CorruptInputError,
    DataRoots,
    Job,
    Output,
    Processor,
    ProcessorService,
    ProcessorSettings,
    TransientError,
    atomic_path,
    with_defaults,
)
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.metadata import event_id, make_metadata
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import ReadEvent, read_events
from tiltstream.streams.samples import sample_event

__all__ = [
    "ServiceThread",
    "StubProcessor",
    "StubSettings",
    "collect",
    "movie_event",
    "send_movies",
    "start_stub_process",
    "stub_settings",
]

ROOT = Path(__file__).resolve().parents[1]


class StubSettings(ProcessorSettings):
    """The stub service's settings (``TILTSTREAM_STUB_*``)."""

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_STUB_", frozen=True, extra="ignore")


class StubProcessor(Processor[dict[str, Any]]):
    """Reads the instruction file, obeys it, writes one output file, emits MovieMotionCorrected."""

    stage = "motioncorr"
    input_record = "MovieAcquired"
    output_record = "MovieMotionCorrected"

    def load(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            with self.roots.open_input(value["movie"]) as handle:  # regular files only, as every stage
                loaded: dict[str, Any] = json.loads(handle.read())
        except json.JSONDecodeError as exc:
            raise CorruptInputError(f"{value['movie']['path']}: {exc}") from exc
        return loaded

    def process(self, job: Job, inputs: dict[str, Any] | None) -> list[Output]:
        assert inputs is not None
        movie_id = str(job.value["movie_id"])
        _, attempts_file = self.roots.output(self.output_root, f"attempts/{movie_id}")
        with attempts_file.open("a") as handle:
            handle.write(f"{os.getpid()} {job.attempt}\n")
        if inputs.get("corrupt"):
            raise CorruptInputError(f"{movie_id}: frame 3 truncated")
        if job.attempt <= int(inputs.get("transient_failures", 0)):
            raise TransientError(f"{movie_id}: storage not ready (attempt {job.attempt})")
        deadline = time.monotonic() + float(inputs.get("sleep_seconds", 0))
        while time.monotonic() < deadline and not job.cancelled.is_set():
            time.sleep(0.05)
        data_path, local = self.roots.output(self.output_root, f"stub/{movie_id}.txt")
        with atomic_path(local) as temporary:
            temporary.write_text(f"corrected {movie_id}\n")
        value = sample_event("MovieMotionCorrected")
        meta = job.value["metadata"]
        value.update(
            metadata=make_metadata(
                "MovieMotionCorrected",
                service=self.stage,
                microscope=meta["microscope"],
                session_id=meta["session_id"],
                tilt_series_id=meta["tilt_series_id"],
                key=(movie_id,),
                causation_id=job.event_id,
                attempt=meta["attempt"],
            ),
            movie_id=movie_id,
            acquisition_order=job.value["acquisition_order"],
            micrograph=data_path,
            thumbnail=None,
        )
        return [Output(self.output_record, value)]


def stub_settings(pipeline: CliSettings, group_id: str, data: Path, **overrides: Any) -> StubSettings:
    """Stub settings on the test's broker, topics and data folder (``data/raw``, ``data/processed``)."""
    fields: dict[str, Any] = {
        "kafka": pipeline.kafka,
        "topics": pipeline.topics,
        "group_id": group_id,
        "data_roots": {"raw": data / "raw", "processed": data / "processed"},
        "max_attempts": 3,
        "backoff_initial_seconds": 0.1,
        "backoff_max_seconds": 0.5,
        "metrics_port": 0,
        "poll_timeout_seconds": 0.1,
    }
    fields.update(overrides)
    for folder in ("raw", "processed"):
        (data / folder).mkdir(parents=True, exist_ok=True)
    # the pipeline's topics as `topics apply` lays them out; the group's dead-letter topic is the
    # service's own to create (the consumer runtime does, on its first dead letter)
    apply_topics(create_admin(pipeline.kafka), Catalogue(pipeline.topics).all_topics())
    return StubSettings(**fields)


def movie_event(data: Path, series: str, tilt: int, instructions: dict[str, Any] | None) -> dict[str, Any]:
    """A MovieAcquired for tilt ``tilt`` of series ``series`` whose movie file holds ``instructions``."""
    value = sample_event("MovieAcquired", 1, tilt)
    movie_id = event_id("movie", series, tilt)
    relative = f"session/{series}/movie_{tilt:03d}.json"
    if instructions is not None:
        (data / "raw" / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / "raw" / relative).write_text(json.dumps(instructions))
    value["metadata"] = make_metadata(
        "MovieAcquired",
        service="source",
        microscope="m02",
        session_id="cm40000-1",
        tilt_series_id=f"cm40000-1:{series}",
        key=(tilt,),
    )
    value.update(movie_id=movie_id, movie={"root": "raw", "path": relative})
    return value


def send_movies(
    pipeline: CliSettings, values: list[dict[str, Any]], headers: list[tuple[str, bytes]] | None = None
) -> None:
    """Produce ``values`` as MovieAcquired (each with ``headers``) and wait for the acknowledgements."""
    producer = EventProducer(create_producer(pipeline.kafka), Catalogue(pipeline.topics))
    producer.wait(
        [producer.send("MovieAcquired", with_defaults("MovieAcquired", v), headers=headers) for v in values]
    )


def collect(pipeline: CliSettings, suffixes: list[str], want: int, timeout: float = 60.0) -> list[ReadEvent]:
    """Read the topics from the beginning until they hold at least ``want`` events (or time runs out)."""
    catalogue = Catalogue(pipeline.topics)
    prefix = pipeline.topics.prefix
    topics = [catalogue.topic(s if s.startswith(prefix) else f"{prefix}.{s}") for s in suffixes]
    deadline = time.monotonic() + timeout
    events: list[ReadEvent] = []
    while time.monotonic() < deadline:
        events = list(read_events(pipeline.kafka, topics))
        if len(events) >= want:
            break
        time.sleep(0.3)
    return events


class ServiceThread:
    """A :class:`ProcessorService` running on a thread; ``stop()`` drains it and waits."""

    def __init__(self, processor: Processor[Any], settings: ProcessorSettings) -> None:
        self.service = ProcessorService(processor, settings)
        self.thread = threading.Thread(target=self.service.run, name="service", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self.service.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "service did not stop"


def start_stub_process(settings: StubSettings, log_file: Path) -> subprocess.Popen[bytes]:
    """Start this module as a service process with ``settings`` passed through the environment."""
    env = dict(os.environ)
    env.update(
        {
            "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "TILTSTREAM_TOPICS_PREFIX": settings.topics.prefix,
            "TILTSTREAM_TOPICS_PARTITIONS": str(settings.topics.partitions),
            "TILTSTREAM_LOG_FORMAT": "json",
        }
    )
    for name, value in settings.model_dump(mode="json", exclude={"kafka", "topics"}).items():
        env[f"TILTSTREAM_STUB_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, __file__], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )


def _main() -> None:
    from tiltstream.log import configure_logging
    from tiltstream.processors.runtime import run_service

    configure_logging()
    settings = StubSettings()
    run_service(StubProcessor(DataRoots(settings.data_roots), settings.output_root), settings)


if __name__ == "__main__":
    _main()
