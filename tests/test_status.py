"""``tiltstream status``: lag per group and partition, members, and the latest state of every series."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from ispyb_fixtures import IspybDatabase
from kafka_helpers import drain
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.connectors.ispyb.sink import create_engine
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import EventConsumer
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event

pytestmark = pytest.mark.kafka


def _rows(settings: CliSettings, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(create_app(settings), ["status", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_status_shows_lag_members_and_latest_series_state(
    pipeline_settings: CliSettings, group_id: str
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), [*catalogue.all_topics(), catalogue.dlq(group_id)])
    raw = create_producer(pipeline_settings.kafka)
    producer = EventProducer(raw, catalogue)
    sends = [producer.send("MovieAcquired", sample_event("MovieAcquired", 1 + i % 2, i)) for i in range(8)]
    for tilt in range(3):  # three status updates for series 1; the last one counts
        sends.append(producer.send("TiltSeriesStatus", {**sample_event("TiltSeriesStatus", 1, tilt)}))
    sends.append(
        producer.send("TiltSeriesStatus", {**sample_event("TiltSeriesStatus", 2, 0), "state": "failed"})
    )
    producer.wait(sends)

    consumer = EventConsumer(
        create_consumer(pipeline_settings.kafka, group_id),
        catalogue,
        DeadLetterSink(raw, catalogue, group_id),
    )
    consumer.subscribe([catalogue.topic("movie.acquired").name])
    assert len(drain(consumer, 5)) == 5
    consumer.commit()
    deadline = time.monotonic() + 30
    rows = _rows(pipeline_settings, "--group", group_id)
    while rows[0]["members"] != 1 and time.monotonic() < deadline:
        consumer.poll(0.2)
        rows = _rows(pipeline_settings, "--group", group_id)
    groups = [r for r in rows if r["kind"] == "group"]
    assert len(groups) == 1
    assert groups[0]["members"] == 1
    assert groups[0]["lag"] == 3
    assert sum(p["lag"] for p in groups[0]["partitions"]) == 3  # type: ignore[attr-defined]
    series = {r["tilt_series_id"]: r for r in rows if r["kind"] == "series"}
    assert series["cm40000-1:Position_1"]["acquired_tilts"] == 3
    assert series["cm40000-1:Position_2"]["state"] == "failed"

    drain(consumer, 3)
    consumer.close()
    groups = [r for r in _rows(pipeline_settings, "--group", group_id) if r["kind"] == "group"]
    assert groups[0]["lag"] == 0
    assert groups[0]["members"] == 0
    # without --group the pipeline's groups are found by their committed offsets
    assert group_id in {r["group"] for r in _rows(pipeline_settings) if r["kind"] == "group"}


@pytest.mark.parametrize("ispyb_database", ["mariadb", "sqlite"], indirect=True)
def test_status_shows_the_ispyb_schema_version_when_a_database_is_configured(
    pipeline_settings: CliSettings, ispyb_database: IspybDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_topics(create_admin(pipeline_settings.kafka), Catalogue(pipeline_settings.topics).all_topics())
    monkeypatch.delenv("TILTSTREAM_ISPYB_DATABASE_URL", raising=False)
    assert not [r for r in _rows(pipeline_settings) if r["kind"] == "ispyb"]  # none configured: no line
    admin = create_engine(ispyb_database.admin_url)
    with admin.connect() as db:
        version = (
            db.execute(sa.text("SELECT `value` FROM AdminVar WHERE `name` = 'schemaVersion'")).scalar()
            if ispyb_database.kind == "mariadb"
            else None
        )
    admin.dispose()
    monkeypatch.setenv("TILTSTREAM_ISPYB_DATABASE_URL", ispyb_database.url)  # the sink's own setting
    (found,) = [r for r in _rows(pipeline_settings) if r["kind"] == "ispyb"]
    assert found["version"] == version
    assert found["missing"] == []
    assert found["error"] is None
    if ispyb_database.kind == "mariadb":
        assert version
        assert str(found["schema"]).startswith(f"canonical (stored routines), schemaVersion {version}")
        assert "***" in str(found["database"])  # the password hidden
    else:
        assert found["schema"] == "ORM-built, schemaVersion unknown"
    text = CliRunner().invoke(create_app(pipeline_settings), ["status"])
    assert text.exit_code == 0, text.output
    assert f"schemaVersion {version or 'unknown'}" in text.stdout


def test_status_says_when_ispyb_cannot_be_reached(pipeline_settings: CliSettings) -> None:
    apply_topics(create_admin(pipeline_settings.kafka), Catalogue(pipeline_settings.topics).all_topics())
    url = "mysql+pymysql://sink:secret@127.0.0.1:9/ispyb"
    (found,) = [r for r in _rows(pipeline_settings, "--database-url", url) if r["kind"] == "ispyb"]
    assert found["schema"] is None
    assert "OperationalError" in str(found["error"])
    assert "secret" not in json.dumps(found)
