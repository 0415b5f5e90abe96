"""The service as a real process: SIGTERM drains and commits; SIGKILL mid-job means the job is redone."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from processor_fixtures import collect, movie_event, send_movies, start_stub_process, stub_settings

from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_consumer

pytestmark = pytest.mark.kafka

# a killed member must leave the group quickly for the restarted one to get its partitions
FAST_GROUP = {"session.timeout.ms": 6000, "max.poll.interval.ms": 10000}


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def _stop(process: subprocess.Popen[bytes], signum: signal.Signals, timeout: float = 60.0) -> int:
    process.send_signal(signum)
    return process.wait(timeout)


def _committed(pipeline: CliSettings, group_id: str, partition: int) -> int:
    topic = Catalogue(pipeline.topics).topic("movie.acquired").name
    check = create_consumer(pipeline.kafka, group_id)
    (committed,) = check.committed([TopicPartition(topic, partition)], timeout=20)
    check.close()
    return int(committed.offset)


def test_sigterm_finishes_the_running_job_commits_it_and_leaves_the_rest(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = stub_settings(pipeline_settings, group_id, data, consumer_overrides=FAST_GROUP)
    running = movie_event(data, "A", 0, {"sleep_seconds": 3})
    waiting = movie_event(data, "A", 1, {"sleep_seconds": 0})
    send_movies(pipeline_settings, [running, waiting])
    attempts = data / "processed" / "attempts"
    process = start_stub_process(settings, tmp_path / "service.log")
    try:
        _wait_for(attempts / running["movie_id"])
        assert _stop(process, signal.SIGTERM) == 0
    finally:
        process.kill()
    events = collect(pipeline_settings, ["movie.motion-corrected"], 1)
    assert [e.value["movie_id"] for e in events if e.value] == [running["movie_id"]]
    assert not (attempts / waiting["movie_id"]).exists()  # queued behind it: left for later
    partition = events[0].partition
    assert _committed(pipeline_settings, group_id, partition) == 1  # the finished job's offset

    # the next instance starts after the drained job: only the waiting movie is processed
    process = start_stub_process(settings, tmp_path / "service.log")
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected"], 2)
        assert _stop(process, signal.SIGTERM) == 0
    finally:
        process.kill()
    assert [e.value["movie_id"] for e in events if e.value] == [running["movie_id"], waiting["movie_id"]]
    assert len((attempts / running["movie_id"]).read_text().splitlines()) == 1
    assert _committed(pipeline_settings, group_id, partition) == 2


def test_sigkill_mid_job_is_redone_by_the_restarted_service_with_one_event_id(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = stub_settings(pipeline_settings, group_id, data, consumer_overrides=FAST_GROUP)
    movie = movie_event(data, "A", 0, {"sleep_seconds": 2})
    send_movies(pipeline_settings, [movie])
    attempts = data / "processed" / "attempts" / movie["movie_id"]
    process = start_stub_process(settings, tmp_path / "service.log")
    try:
        _wait_for(attempts)
        assert _stop(process, signal.SIGKILL) == -signal.SIGKILL
    finally:
        process.kill()
    assert collect(pipeline_settings, ["movie.motion-corrected"], 1, timeout=1) == []
    assert not (data / "processed" / "stub" / f"{movie['movie_id']}.txt").exists()

    process = start_stub_process(settings, tmp_path / "service.log")
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected"], 1, timeout=90)
        assert _stop(process, signal.SIGTERM) == 0
    finally:
        process.kill()
    pids = {line.split()[0] for line in attempts.read_text().splitlines()}
    assert len(pids) == 2  # started by the killed process, redone by the restarted one
    assert len({e.value["metadata"]["event_id"] for e in events if e.value}) == 1
    assert (data / "processed" / "stub" / f"{movie['movie_id']}.txt").read_text().startswith("corrected")


def test_sigterm_abandons_a_job_past_the_drain_deadline_without_committing_it(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = stub_settings(
        pipeline_settings, group_id, data, consumer_overrides=FAST_GROUP, drain_deadline_seconds=1.0
    )
    movie = movie_event(data, "A", 0, {"sleep_seconds": 120})
    send_movies(pipeline_settings, [movie])
    process = start_stub_process(settings, tmp_path / "service.log")
    try:
        _wait_for(data / "processed" / "attempts" / movie["movie_id"])
        # it exits within _stop's 60 s wait although the job needs 120 s: abandoned at the deadline
        assert _stop(process, signal.SIGTERM) == 0
    finally:
        process.kill()
    assert collect(pipeline_settings, ["movie.motion-corrected"], 1, timeout=1) == []
    partitions = {_committed(pipeline_settings, group_id, p) for p in range(3)}
    assert all(offset < 0 for offset in partitions)  # nothing committed: the movie will be redone
