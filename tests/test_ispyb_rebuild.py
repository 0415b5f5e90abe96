"""A database rebuilt by replay from the broker equals, row by row, the one the live run wrote.

The live run writes each event in its own transaction as it comes; the rebuild is a new consumer group
reading every topic from its first offset, in batches, into an empty database (the visit registered by
the facility, nothing else). The diff is the product's (:mod:`tiltstream.connectors.ispyb.content`), the
one the rebuild benchmark prints.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from ispyb_fixtures import make_database

from tiltstream.connectors.ispyb.content import content_differences, ispyb_content
from tiltstream.connectors.ispyb.samples import SessionEvent, sample, session_events
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer

pytestmark = pytest.mark.kafka

SERIES, TILTS = 3, 10


def day_with_reprocessing() -> list[SessionEvent]:
    """A session with a failed movie healed by its reinjection, and a movie processed twice."""
    events = session_events(SERIES, TILTS, failed_series=2)
    healed = sample("MovieMotionCorrected", 2, TILTS - 1)
    healed["metadata"]["attempt"] = 2
    healed["metadata"]["event_id"] = str(uuid.uuid4())
    again = sample("CtfEstimated", 1, 3)
    again["metadata"]["attempt"], again["fit_score"] = 2, again["fit_score"] / 3
    again["metadata"]["event_id"] = str(uuid.uuid4())
    return [*events, ("MovieMotionCorrected", healed), ("CtfEstimated", again)]


def sink_settings(settings: CliSettings, url: str) -> IspybSinkSettings:
    return IspybSinkSettings(
        database_url=url,
        kafka=settings.kafka,
        topics=settings.topics,
        group_id=f"rebuild-{uuid.uuid4().hex[:8]}",
        batch_size=200,
        linger_seconds=0.2,
    )


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_a_day_rebuilt_by_replay_is_identical_to_the_live_run(
    request: pytest.FixtureRequest, pipeline_settings: CliSettings, tmp_path: Path, kind: str
) -> None:
    events = day_with_reprocessing()
    live_db = make_database(request, kind, tmp_path / "live")
    rebuilt_db = make_database(request, kind, tmp_path / "rebuilt")
    live, rebuilt = next(live_db), next(rebuilt_db)
    try:
        live_sink = IspybSink(sink_settings(pipeline_settings, live.url))
        for event in events:  # as they came, one transaction each
            live_sink.write([event])
        live_sink.engine.dispose()
        catalogue = Catalogue(pipeline_settings.topics)
        apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
        producer = EventProducer(create_producer(pipeline_settings.kafka), catalogue)
        producer.wait([producer.send(record, value) for record, value in events])
        replay = IspybSink(sink_settings(pipeline_settings, rebuilt.url))
        replay.run(until_caught_up=True)
        replay.engine.dispose()
        contents = []
        for database in (live, rebuilt):
            engine = create_engine(database.admin_url)
            contents.append(ispyb_content(engine, tmp_path))
            engine.dispose()
        assert len(rebuilt.new_rows()["Movie"]) == SERIES * TILTS  # the rebuild wrote the day
        assert content_differences(contents[0], contents[1]) == []
    finally:
        next(live_db, None)
        next(rebuilt_db, None)
