"""The motion-correction service on the real broker: a corrupt movie fails alone, the rest go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from motioncorr_fixtures import synthetic_movie, write_movie
from processor_fixtures import ServiceThread, collect, movie_event, send_movies

from tiltstream.processors.motioncorr import MotionCorrectionProcessor, MotionCorrectionSettings
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.dlq import HEADER_CLASS, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC
from tiltstream.streams.reader import read_events

pytestmark = pytest.mark.kafka


def _settings(pipeline_settings: CliSettings, group_id: str, tmp_path: Path) -> MotionCorrectionSettings:
    (tmp_path / "processed").mkdir(exist_ok=True)
    return MotionCorrectionSettings(
        kafka=pipeline_settings.kafka,
        topics=pipeline_settings.topics,
        group_id=group_id,
        data_roots={"raw": tmp_path / "raw", "processed": tmp_path / "processed"},
        device="cpu",
        patches_x=1,
        patches_y=1,
        metrics_port=0,
        backoff_initial_seconds=0.1,
    )


def _movie(tmp_path: Path, series: str, tilt: int) -> dict[str, Any]:
    movie, _ = synthetic_movie(tilt, size=128, frames=4, counts=2.0, contrast=0.2)
    value = movie_event(tmp_path, series, tilt, None)
    write_movie(tmp_path / "raw" / value["movie"]["path"], movie, 1.5)
    value.update(movie_format="tiff", frame_count=4, pixel_size_angstroms=1.5)
    return value


def test_garbage_on_movie_acquired_is_dead_lettered_once_and_the_series_behind_it_goes_on(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    """Issue 16's reproduction: `topics apply`, b"\\x00garbage" to movie.acquired, run motioncorr."""
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())  # no dead-letter topic
    settings = _settings(pipeline_settings, group_id, tmp_path)
    raw = create_producer(pipeline_settings.kafka)
    movie_topic = catalogue.topic("movie.acquired").name
    where: list[tuple[int, int]] = []
    raw.produce(  # on the series' partition, ahead of its movies
        movie_topic,
        b"\x00garbage",
        b"cm40000-1:A",
        on_delivery=lambda _e, m: where.append((int(m.partition() or 0), int(m.offset() or 0))),
    )
    raw.flush(10)
    first = _movie(tmp_path, "A", 0)
    send_movies(pipeline_settings, [first])

    service = ServiceThread(MotionCorrectionProcessor(settings), settings)
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected"], 1, timeout=120)
    finally:
        service.stop()
    assert [e.value["movie_id"] for e in events if e.value] == [first["movie_id"]]
    assert service.service.events.dead_lettered == 1
    letters = list(read_events(pipeline_settings.kafka, [catalogue.dlq(group_id)]))
    assert [e.raw for e in letters] == [b"\x00garbage"]
    headers = letters[0].headers
    assert headers[HEADER_TOPIC] == movie_topic
    assert (headers[HEADER_PARTITION], headers[HEADER_OFFSET]) == tuple(map(str, where[0]))
    assert headers[HEADER_CLASS] == "tiltstream.streams.errors.UndecodableEventError"

    second = _movie(tmp_path, "A", 1)  # behind the garbage's position on the same partition
    send_movies(pipeline_settings, [second])
    restarted = ServiceThread(MotionCorrectionProcessor(settings), settings)
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected"], 2, timeout=120)
    finally:
        restarted.stop()
    assert [e.value["movie_id"] for e in events if e.value] == [first["movie_id"], second["movie_id"]]
    assert restarted.service.events.dead_lettered == 0  # the restart did not meet the garbage again
    assert len(list(read_events(pipeline_settings.kafka, [catalogue.dlq(group_id)]))) == 1


def test_corrupt_movie_yields_one_processing_failed_and_the_next_movies_are_processed(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    settings = _settings(pipeline_settings, group_id, tmp_path)
    values = [_movie(tmp_path, "A", tilt) for tilt in range(3)]
    broken = tmp_path / "raw" / values[0]["movie"]["path"]
    broken.write_bytes(broken.read_bytes()[:500])
    send_movies(pipeline_settings, values)

    service = ServiceThread(MotionCorrectionProcessor(settings), settings)
    try:
        events = collect(pipeline_settings, ["movie.motion-corrected", "processing.failed"], 3, timeout=120)
    finally:
        service.stop()
    by_record: dict[str, list[str]] = {}
    for event in events:
        assert event.value is not None
        assert event.record is not None
        by_record.setdefault(event.record, []).append(event.value["movie_id"])
    assert by_record["ProcessingFailed"] == [values[0]["movie_id"]]
    assert by_record["MovieMotionCorrected"] == [values[1]["movie_id"], values[2]["movie_id"]]
    failed = next(e.value for e in events if e.record == "ProcessingFailed" and e.value)
    assert (failed["error_class"], failed["failure_kind"], failed["stage"]) == (
        "CorruptInputError",
        "permanent",
        "motioncorr",
    )
