"""The motion-correction service on the real broker: a corrupt movie fails alone, the rest go on."""

from __future__ import annotations

from pathlib import Path

import pytest
from motioncorr_fixtures import synthetic_movie, write_movie
from processor_fixtures import ServiceThread, collect, movie_event, send_movies

from tiltstream.processors.motioncorr import MotionCorrectionProcessor, MotionCorrectionSettings
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin

pytestmark = pytest.mark.kafka


def test_corrupt_movie_yields_one_processing_failed_and_the_next_movies_are_processed(
    pipeline_settings: CliSettings, group_id: str, tmp_path: Path
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])
    settings = MotionCorrectionSettings(
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
    (tmp_path / "processed").mkdir()
    values = []
    for tilt in range(3):
        movie, _ = synthetic_movie(tilt, size=128, frames=4, counts=2.0, contrast=0.2)
        value = movie_event(tmp_path, "A", tilt, None)
        write_movie(tmp_path / "raw" / value["movie"]["path"], movie, 1.5)
        value.update(movie_format="tiff", frame_count=4, pixel_size_angstroms=1.5)
        values.append(value)
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
