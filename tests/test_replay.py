"""``tiltstream replay``: dry run, execute, refusal while the group is active, every reset kind."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from kafka_helpers import drain
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import EventConsumer
from tiltstream.streams.dlq import DeadLetterSink
from tiltstream.streams.groups import describe_group, group_offsets
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.replay import parse_duration
from tiltstream.streams.samples import sample_event

pytestmark = pytest.mark.kafka


class Pipeline:
    """A catalogue on the test broker with CtfEstimated events and one consumer group."""

    def __init__(self, settings: CliSettings, group: str) -> None:
        self.settings = settings
        self.group = group
        self.catalogue = Catalogue(settings.topics)
        self.admin = create_admin(settings.kafka)
        apply_topics(self.admin, [*self.catalogue.all_topics(), self.catalogue.dlq(group)])
        self.raw = create_producer(settings.kafka)
        self.producer = EventProducer(self.raw, self.catalogue)
        self.topic = self.catalogue.topic("micrograph.ctf-estimated").name
        self.sent = 0

    def produce(self, count: int) -> None:
        values = [sample_event("CtfEstimated", 1 + (self.sent + i) % 5, self.sent + i) for i in range(count)]
        self.producer.wait([self.producer.send("CtfEstimated", v) for v in values])
        self.sent += count

    def member(self) -> EventConsumer:
        consumer = EventConsumer(
            create_consumer(self.settings.kafka, self.group),
            self.catalogue,
            DeadLetterSink(self.raw, self.catalogue, self.group),
        )
        consumer.subscribe([self.topic])
        return consumer

    def consume(self, count: int) -> list[int]:
        consumer = self.member()
        events = drain(consumer, count)
        consumer.close()
        return sorted(e.event.value["acquisition_order"] for e in events)

    def committed(self) -> int:
        return sum(p.committed or 0 for p in group_offsets(self.admin, self.group))

    def replay(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(create_app(self.settings), ["replay", self.group, *args])
        return result.exit_code, result.output


@pytest.fixture
def pipeline(pipeline_settings: CliSettings, group_id: str) -> Pipeline:
    line = Pipeline(pipeline_settings, group_id)
    line.produce(10)
    assert line.consume(10) == list(range(10))
    assert line.committed() == 10
    return line


def test_dry_run_changes_nothing_and_execute_replays_everything(pipeline: Pipeline) -> None:
    code, output = pipeline.replay("--to-earliest")
    assert code == 0, output
    assert "Dry run" in output
    assert pipeline.committed() == 10
    assert all(p.lag == 0 for p in group_offsets(pipeline.admin, pipeline.group))

    code, output = pipeline.replay("--to-earliest", "--execute")
    assert code == 0, output
    assert pipeline.committed() == 0
    assert sum(p.lag for p in group_offsets(pipeline.admin, pipeline.group)) == 10
    assert pipeline.consume(10) == list(range(10))  # every event processed again


def test_refuses_while_the_group_has_members(pipeline: Pipeline) -> None:
    member = pipeline.member()
    deadline = time.monotonic() + 30
    while not describe_group(pipeline.admin, pipeline.group).active and time.monotonic() < deadline:
        member.poll(0.2)
    try:
        code, output = pipeline.replay("--to-earliest", "--execute")
    finally:
        member.close()
    assert code == 2
    assert "active member" in output
    assert pipeline.committed() == 10


def test_shift_by_is_clamped_to_the_log(pipeline: Pipeline) -> None:
    before = {(p.topic, p.partition): p for p in group_offsets(pipeline.admin, pipeline.group)}
    code, output = pipeline.replay("--shift-by", "-2", "--execute")
    assert code == 0, output
    for p in group_offsets(pipeline.admin, pipeline.group):
        old = before[(p.topic, p.partition)]
        assert p.committed == max((old.committed or 0) - 2, old.low)
    again = pipeline.consume(10 - pipeline.committed())
    assert len(again) == sum(min(2, (p.committed or 0) - p.low) for p in before.values())
    assert pipeline.committed() == 10


def test_to_datetime_and_by_duration_replay_what_came_after(pipeline: Pipeline) -> None:
    time.sleep(1.5)
    mark = datetime.now(UTC)
    time.sleep(0.5)
    pipeline.produce(4)
    assert pipeline.consume(4) == [10, 11, 12, 13]
    code, output = pipeline.replay("--to-datetime", mark.isoformat(), "--execute")
    assert code == 0, output
    assert pipeline.consume(4) == [10, 11, 12, 13]
    # a duration far longer than the test's age goes back to the start
    code, output = pipeline.replay("--by-duration", "PT1H", "--execute")
    assert code == 0, output
    assert pipeline.committed() == 0


def test_exactly_one_reset_kind(pipeline: Pipeline) -> None:
    code, output = pipeline.replay("--to-earliest", "--shift-by", "1")
    assert code != 0
    assert "exactly one" in output
    code, _ = pipeline.replay()
    assert code != 0


def test_parse_duration() -> None:
    assert parse_duration("PT1H30M") == timedelta(hours=1, minutes=30)
    assert parse_duration("P2DT3S") == timedelta(days=2, seconds=3)
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("45s") == timedelta(seconds=45)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
