"""The processor runtime on the real broker, with the pure-Python stub processor (no torch)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from processor_fixtures import (
    ServiceThread,
    StubProcessor,
    collect,
    movie_event,
    send_movies,
    stub_settings,
)

from tiltstream.processors.runtime import DataRoots
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_consumer, create_producer
from tiltstream.streams.dlq import HEADER_REINJECTED_FROM

pytestmark = pytest.mark.kafka


def _stub(settings_roots: dict[str, Path]) -> StubProcessor:
    return StubProcessor(DataRoots(settings_roots))


def _attempts(data: Path, movie_id: str) -> list[str]:
    path = data / "processed" / "attempts" / movie_id
    return path.read_text().splitlines() if path.exists() else []


def _sample(service: ServiceThread, name: str, **labels: str) -> float:
    value = service.service.registry.get_sample_value(name, {"stage": "motioncorr", **labels})
    return float(value or 0.0)


def test_outcomes_per_exception_type_and_bad_series_do_not_block_others(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = stub_settings(pipeline_settings, group_id, data)
    ok = {"sleep_seconds": 0}
    movies = {
        "a0": movie_event(data, "A", 0, ok),
        "a1": movie_event(data, "A", 1, {"corrupt": True}),
        "a2": movie_event(data, "A", 2, ok),
        "b0": movie_event(data, "B", 0, {"transient_failures": 2}),
        "b1": movie_event(data, "B", 1, {"transient_failures": 5}),
        "c0": movie_event(data, "C", 0, ok),
        "d0": movie_event(data, "D", 0, ok),
    }
    outside = tmp_path / "outside.json"  # c0's movie is a link out of the data root (a '..' path
    outside.write_text(json.dumps(ok))  # is refused earlier, by the producer: see test_validation.py)
    escaping = data / "raw" / movies["c0"]["movie"]["path"]
    escaping.unlink()
    escaping.symlink_to(outside)
    send_movies(pipeline_settings, [movies[k] for k in ("a0", "a1", "a2", "b0", "b1", "c0")])
    catalogue = Catalogue(pipeline_settings.topics)
    raw = create_producer(pipeline_settings.kafka)
    raw.produce(catalogue.topic("movie.acquired").name, b"\x00garbage", b"cm40000-1:D")
    raw.flush(10)
    send_movies(pipeline_settings, [movies["d0"]])

    service = ServiceThread(_stub(settings.data_roots), settings)
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected", "processing.failed"], 7)
        dead = collect(pipeline_settings, [f"dlq.{group_id}"], 1)
    finally:
        service.stop()

    corrected = {e.value["movie_id"] for e in events if e.record == "MovieMotionCorrected" and e.value}
    assert corrected == {movies[k]["movie_id"] for k in ("a0", "a2", "b0", "d0")}
    failed = {e.value["movie_id"]: e.value for e in events if e.record == "ProcessingFailed" and e.value}
    assert set(failed) == {movies[k]["movie_id"] for k in ("a1", "b1", "c0")}
    a1, b1, c0 = (failed[movies[k]["movie_id"]] for k in ("a1", "b1", "c0"))
    assert (a1["error_class"], a1["failure_kind"], a1["attempts"]) == ("CorruptInputError", "permanent", 1)
    assert (b1["error_class"], b1["failure_kind"], b1["attempts"]) == (
        "TransientError",
        "retries-exhausted",
        3,
    )
    assert (c0["error_class"], c0["failure_kind"]) == ("PathOutsideRootError", "permanent")
    assert a1["metadata"]["causation_id"] == movies["a1"]["metadata"]["event_id"]
    assert a1["input_topic"] == catalogue.topic("movie.acquired").name
    assert len(_attempts(data, movies["a1"]["movie_id"])) == 1
    assert len(_attempts(data, movies["b0"]["movie_id"])) == 3
    assert len(_attempts(data, movies["b1"]["movie_id"])) == 3
    assert [e.raw for e in dead] == [b"\x00garbage"]
    assert (data / "processed" / "stub" / f"{movies['d0']['movie_id']}.txt").exists()
    assert _sample(service, "tiltstream_processor_processed_total") == 4
    assert _sample(service, "tiltstream_processor_retries_total") == 4
    assert _sample(service, "tiltstream_processor_dead_lettered_total") == 1
    assert (
        _sample(
            service,
            "tiltstream_processor_failed_total",
            failure_kind="retries-exhausted",
            error_class="TransientError",
        )
        == 1
    )
    # every input's offset was committed when the service left the group
    topic = catalogue.topic("movie.acquired").name
    check = create_consumer(pipeline_settings.kafka, group_id)
    committed = check.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)
    ends = [check.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in range(3)]
    check.close()
    assert [max(tp.offset, 0) for tp in committed] == ends


def test_a_fifo_in_a_data_root_fails_permanently_without_blocking_and_the_next_movie_goes_on(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = stub_settings(pipeline_settings, group_id, data)
    fifo = movie_event(data, "F", 0, None)
    (data / "raw" / fifo["movie"]["path"]).parent.mkdir(parents=True)
    os.mkfifo(data / "raw" / fifo["movie"]["path"])  # nobody ever writes to it: an open would block
    folder = movie_event(data, "F", 1, None)
    (data / "raw" / folder["movie"]["path"]).mkdir(parents=True)
    after = movie_event(data, "F", 2, {"sleep_seconds": 0})
    send_movies(pipeline_settings, [fifo, folder, after])
    service = ServiceThread(_stub(settings.data_roots), settings)
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected", "processing.failed"], 3)
    finally:
        service.stop()
    failed = {e.value["movie_id"]: e.value for e in events if e.record == "ProcessingFailed" and e.value}
    corrected = [e.value["movie_id"] for e in events if e.record == "MovieMotionCorrected" and e.value]
    assert corrected == [after["movie_id"]]
    assert set(failed) == {fifo["movie_id"], folder["movie_id"]}
    for value, kind in ((fifo, "a FIFO"), (folder, "a directory")):
        failure = failed[value["movie_id"]]
        assert (failure["error_class"], failure["failure_kind"], failure["attempts"]) == (
            "NotRegularFileError",
            "permanent",
            1,
        )
        assert f"raw:{value['movie']['path']} is {kind}" in failure["error_message"]


def test_a_job_longer_than_max_poll_interval_keeps_group_membership(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    overrides = {"max.poll.interval.ms": 6000, "session.timeout.ms": 6000}
    settings = stub_settings(pipeline_settings, group_id, data, consumer_overrides=overrides)
    long_job = movie_event(data, "A", 0, {"sleep_seconds": 9})
    after = movie_event(data, "A", 1, {"sleep_seconds": 0})
    send_movies(pipeline_settings, [long_job, after])
    service = ServiceThread(_stub(settings.data_roots), settings)
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected"], 2, timeout=90)
        time.sleep(1)
        rebalances = service.service.rebalances
    finally:
        service.stop()
    assert [e.value["movie_id"] for e in events if e.value] == [long_job["movie_id"], after["movie_id"]]
    assert len(_attempts(data, long_job["movie_id"])) == 1
    assert len(_attempts(data, after["movie_id"])) == 1
    assert rebalances == 1  # assigned once, never revoked or lost while the job ran


def test_two_instances_share_the_partitions_and_process_every_movie_once(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = stub_settings(pipeline_settings, group_id, data)
    first = ServiceThread(_stub(settings.data_roots), settings)
    second = ServiceThread(_stub(settings.data_roots), settings)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            first.service.assignment
            and second.service.assignment
            and len(first.service.assignment | second.service.assignment) == 3
        ):
            time.sleep(0.2)
        assert first.service.assignment.isdisjoint(second.service.assignment)
        movies = [movie_event(data, f"S{s}", t, {"sleep_seconds": 0.1}) for s in range(8) for t in range(2)]
        send_movies(pipeline_settings, movies)
        events = collect(pipeline_settings, ["movie.motion-corrected"], len(movies), timeout=90)
    finally:
        first.stop()
        second.stop()
    ids = [e.value["metadata"]["event_id"] for e in events if e.value]
    assert len(ids) == len(set(ids)) == len(movies)
    assert {e.value["movie_id"] for e in events if e.value} == {m["movie_id"] for m in movies}
    assert all(len(_attempts(data, m["movie_id"])) == 1 for m in movies)
    assert _sample(first, "tiltstream_processor_processed_total") > 0
    assert _sample(second, "tiltstream_processor_processed_total") > 0


def test_a_message_reinjected_for_one_group_is_skipped_by_another(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    """The reinjection rule in a processor: only the group whose dead-letter topic it came from acts."""
    data = tmp_path / "data"
    settings = stub_settings(pipeline_settings, group_id, data)
    other = stub_settings(pipeline_settings, f"{group_id}-other", data)
    catalogue = Catalogue(pipeline_settings.topics)
    ours = movie_event(data, "A", 0, {"sleep_seconds": 0})
    theirs = movie_event(data, "A", 1, {"sleep_seconds": 0})
    plain = movie_event(data, "A", 2, {"sleep_seconds": 0})
    from_ours = f"{catalogue.dlq(group_id).name}/0/0".encode()
    from_theirs = f"{catalogue.dlq(other.group_id).name}/0/0".encode()
    send_movies(pipeline_settings, [ours], headers=[(HEADER_REINJECTED_FROM, from_ours)])
    send_movies(pipeline_settings, [theirs], headers=[(HEADER_REINJECTED_FROM, from_theirs)])
    send_movies(pipeline_settings, [plain])

    services: dict[str, ServiceThread] = {}
    for group_settings in (settings, other):
        service = ServiceThread(_stub(group_settings.data_roots), group_settings)
        try:  # the plain movie is behind both reinjected ones on the series' partition
            _wait_for_attempts(data, plain["movie_id"], len(services) + 1)
        finally:
            service.stop()
        services[group_settings.group_id] = service

    assert len(_attempts(data, ours["movie_id"])) == 1  # by its own group only
    assert len(_attempts(data, theirs["movie_id"])) == 1  # by the other group only
    assert len(_attempts(data, plain["movie_id"])) == 2  # by both
    for service in services.values():
        assert _sample(service, "tiltstream_processor_reinjected_skipped_total") == 1
        assert _sample(service, "tiltstream_processor_processed_total") == 2
    corrected = collect(pipeline_settings, ["movie.motion-corrected"], 4)
    assert sorted(e.value["movie_id"] for e in corrected if e.value) == sorted(
        [ours["movie_id"], theirs["movie_id"], plain["movie_id"], plain["movie_id"]]
    )


def _wait_for_attempts(data: Path, movie_id: str, want: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_attempts(data, movie_id)) < want and time.monotonic() < deadline:
        time.sleep(0.2)
