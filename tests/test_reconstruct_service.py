"""The reconstruction service on the real broker: a missing micrograph fails cleanly; SIGTERM mid-job
leaves the request to be redone by the next instance (the ``tiltstream process reconstruct`` process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from processor_fixtures import ServiceThread, collect
from reconstruct_fixtures import SimulatedSeries, reconstruction_request, simulate_series

from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
from tiltstream.processors.runtime import with_defaults
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.producer import EventProducer

pytestmark = pytest.mark.kafka

FAST_GROUP = {"session.timeout.ms": 6000, "max.poll.interval.ms": 60000}


@pytest.fixture(scope="module")
def series() -> SimulatedSeries:
    return simulate_series(seed=3, size_pixels=128, tilt_count=21, noise=0.5)


def _setup(pipeline: CliSettings, group_id: str) -> None:
    catalogue = Catalogue(pipeline.topics)
    apply_topics(create_admin(pipeline.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])


def _send(pipeline: CliSettings, request: dict[str, object]) -> None:
    producer = EventProducer(create_producer(pipeline.kafka), Catalogue(pipeline.topics))
    producer.wait(
        [producer.send("ReconstructionRequested", with_defaults("ReconstructionRequested", request))]
    )


def _committed(pipeline: CliSettings, group_id: str, partition: int) -> int:
    topic = Catalogue(pipeline.topics).topic("tiltseries.reconstruction-requested").name
    check = create_consumer(pipeline.kafka, group_id)
    (committed,) = check.committed([TopicPartition(topic, partition)], timeout=20)
    check.close()
    return int(committed.offset)


def test_a_request_naming_a_missing_micrograph_ends_in_processing_failed(
    pipeline_settings: CliSettings, group_id: str, series: SimulatedSeries, tmp_path: Path
) -> None:
    _setup(pipeline_settings, group_id)
    request = reconstruction_request(series, tmp_path, missing={4}, binning=2, thickness_angstroms=400.0)
    _send(pipeline_settings, request)
    settings = ReconstructionSettings(
        kafka=pipeline_settings.kafka,
        topics=pipeline_settings.topics,
        group_id=group_id,
        data_roots={"processed": tmp_path / "processed"},
        device="cpu",
        metrics_port=0,
        poll_timeout_seconds=0.1,
        backoff_initial_seconds=0.1,
    )
    service = ServiceThread(ReconstructionProcessor(settings), settings)
    try:
        failures = collect(pipeline_settings, ["processing.failed"], 1)
    finally:
        service.stop()
    (failure,) = [e.value for e in failures if e.value]
    assert failure["stage"] == "reconstruct"
    assert failure["failure_kind"] == "permanent"
    assert failure["attempts"] == 1  # not retried: the file will not appear by itself
    assert failure["error_class"] == "CorruptInputError"
    assert "tilt 4 missing" in failure["error_message"]
    assert failure["request_id"] == request["request_id"]
    assert collect(pipeline_settings, ["tomogram.reconstructed"], 1, timeout=1) == []


def _start(pipeline: CliSettings, group_id: str, data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": pipeline.kafka.bootstrap_servers,
            "TILTSTREAM_TOPICS_PREFIX": pipeline.topics.prefix,
            "TILTSTREAM_TOPICS_PARTITIONS": str(pipeline.topics.partitions),
            "TILTSTREAM_LOG_FORMAT": "json",
            "TILTSTREAM_RECONSTRUCT_DATA_ROOTS": json.dumps({"processed": str(data / "processed")}),
            "TILTSTREAM_RECONSTRUCT_DRAIN_DEADLINE_SECONDS": "0",  # SIGTERM abandons the running job
            "TILTSTREAM_RECONSTRUCT_CONSUMER_OVERRIDES": json.dumps(FAST_GROUP),
        }
    )
    command = [str(Path(sys.executable).with_name("tiltstream")), "process", "reconstruct"]
    command += ["--device", "cpu", "--group", group_id, "--metrics-port", "0"]
    with log.open("ab") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _wait_for_line(log: Path, text: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never logged:\n{log.read_text(errors='replace')[-3000:]}")


def test_sigterm_during_a_reconstruction_leaves_it_to_be_redone(
    pipeline_settings: CliSettings, group_id: str, series: SimulatedSeries, tmp_path: Path
) -> None:
    _setup(pipeline_settings, group_id)
    data = tmp_path / "data"
    request = reconstruction_request(series, data, binning=2, thickness_angstroms=400.0)
    _send(pipeline_settings, request)
    log = tmp_path / "service.log"
    process = _start(pipeline_settings, group_id, data, log)
    try:
        _wait_for_line(log, "job started")  # the job imports torch and aligns for seconds from here
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.kill()
    assert "job abandoned" in log.read_text()
    assert collect(pipeline_settings, ["tomogram.reconstructed"], 1, timeout=1) == []
    tomograms = data / "processed" / "cm40000-1" / "tomograms"
    assert not tomograms.exists() or not list(tomograms.rglob("*.mrc"))

    process = _start(pipeline_settings, group_id, data, log)
    try:
        events = collect(pipeline_settings, ["tomogram.reconstructed"], 1, timeout=120)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.kill()
    (event,) = [e for e in events if e.value]
    assert event.value is not None
    assert event.value["request_id"] == request["request_id"]
    assert _committed(pipeline_settings, group_id, event.partition) == 1
