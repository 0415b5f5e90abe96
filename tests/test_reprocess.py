"""``tiltstream reprocess``: the stage's latest inputs for one series come back as a new attempt."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event

pytestmark = pytest.mark.kafka


@pytest.fixture
def session(pipeline_settings: CliSettings) -> EventProducer:
    """Two series: 4 tilts acquired and corrected each, and a v1 and a v2 command for series 1."""
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    producer = EventProducer(create_producer(pipeline_settings.kafka), catalogue)
    sends = []
    for series in (1, 2):
        for tilt in range(4):
            sends.append(producer.send("MovieAcquired", sample_event("MovieAcquired", series, tilt)))
            sends.append(
                producer.send("MovieMotionCorrected", sample_event("MovieMotionCorrected", series, tilt))
            )
    request = sample_event("ReconstructionRequested", 1)
    sends.append(producer.send("ReconstructionRequested", request))
    v2 = {**request, "version": 2, "request_id": request["request_id"].replace(":v1", ":v2")}
    v2["metadata"] = {**request["metadata"], "event_id": request["metadata"]["event_id"] + "-v2"}
    sends.append(producer.send("ReconstructionRequested", v2))
    producer.wait(sends)
    return producer


def _dump(settings: CliSettings, topic: str, key: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(create_app(settings), ["events", "dump", topic, "--key", key])
    return [json.loads(line)["event"] for line in result.stdout.splitlines() if line.startswith("{")]


def test_reprocess_from_motioncorr_reemits_every_movie_once_with_attempt_two(
    pipeline_settings: CliSettings, session: EventProducer
) -> None:
    series = "cm40000-1:Position_1"
    result = CliRunner().invoke(create_app(pipeline_settings), ["reprocess", series, "--from", "motioncorr"])
    assert result.exit_code == 0, result.output
    movies = _dump(pipeline_settings, "movie.acquired", series)
    assert len(movies) == 8
    originals = {m["metadata"]["event_id"]: m for m in movies if m["metadata"]["attempt"] == 1}  # type: ignore[index]
    again = [m for m in movies if m["metadata"]["attempt"] == 2]  # type: ignore[index]
    assert len(again) == 4
    for event in again:
        meta = event["metadata"]
        original = originals[meta["causation_id"]]  # type: ignore[index]
        assert event["movie_id"] == original["movie_id"]
        assert meta["event_id"] not in originals  # type: ignore[index]
        assert meta["producer"]["service"] == "operator"  # type: ignore[index]
    # the other series is untouched
    assert len(_dump(pipeline_settings, "movie.acquired", "cm40000-1:Position_2")) == 4
    # a second reprocess builds on the newest attempt
    CliRunner().invoke(create_app(pipeline_settings), ["reprocess", series, "--from", "motioncorr"])
    attempts = sorted(m["metadata"]["attempt"] for m in _dump(pipeline_settings, "movie.acquired", series))  # type: ignore[index]
    assert attempts == [1] * 4 + [2] * 4 + [3] * 4


def test_reprocess_from_reconstruct_resends_only_the_newest_version(
    pipeline_settings: CliSettings, session: EventProducer
) -> None:
    series = "cm40000-1:Position_1"
    result = CliRunner().invoke(create_app(pipeline_settings), ["reprocess", series, "--from", "reconstruct"])
    assert result.exit_code == 0, result.output
    commands = _dump(pipeline_settings, "tiltseries.reconstruction-requested", series)
    resent = [c for c in commands if c["metadata"]["attempt"] == 2]  # type: ignore[index]
    assert [c["version"] for c in resent] == [2]


def test_dry_run_and_unknown_series(pipeline_settings: CliSettings, session: EventProducer) -> None:
    app = create_app(pipeline_settings)
    dry = CliRunner().invoke(app, ["reprocess", "cm40000-1:Position_2", "--from", "ctf", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run" in dry.output
    assert len(_dump(pipeline_settings, "movie.motion-corrected", "cm40000-1:Position_2")) == 4
    missing = CliRunner().invoke(app, ["reprocess", "cm40000-1:Position_9", "--from", "denoise"])
    assert missing.exit_code == 1
    assert "no denoise input" in missing.output


def test_reprocessed_movies_take_the_sessions_newest_parameters(
    pipeline_settings: CliSettings, session: EventProducer
) -> None:
    """A parameter changed mid-session reaches old movies when they are reprocessed: the re-sent
    ``MovieAcquired`` carry the new values and version; the originals stay as they were."""
    app = create_app(pipeline_settings)
    changed = CliRunner().invoke(app, ["session", "set", "cm40000-1", "gain_flip=2", "frame_halves=false"])
    assert changed.exit_code == 0, changed.output
    series = "cm40000-1:Position_1"
    result = CliRunner().invoke(app, ["reprocess", series, "--from", "motioncorr"])
    assert result.exit_code == 0, result.output
    assert "v1" in result.output  # the table names the parameters version each movie goes with
    movies = _dump(pipeline_settings, "movie.acquired", series)
    again = [m for m in movies if m["metadata"]["attempt"] == 2]  # type: ignore[index]
    first = [m for m in movies if m["metadata"]["attempt"] == 1]  # type: ignore[index]
    assert len(again) == len(first) == 4
    assert {(m["gain_flip"], m["frame_halves"], m["session_parameters_version"]) for m in again} == {
        (2, False, 1)
    }
    assert {(m["gain_flip"], m["session_parameters_version"]) for m in first} == {(None, 0)}
    assert {m["gain_rotation_quarter_turns"] for m in again} == {None}  # unset stays the service's
