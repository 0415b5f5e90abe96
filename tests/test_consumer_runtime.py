"""The one consumer runtime (EventConsumer) on the real broker: what every service relies on.

Decode, dead-letter (undecodable and invalid), the reinjection rule, offsets stored only past finished
work, pause/resume without losing the group, drain, and a dead-letter topic nobody laid out. Each
service's own tests show the same behaviour holds for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.consumer import ConsumedEvent, EventConsumer
from tiltstream.streams.dlq import (
    HEADER_CLASS,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REINJECTED_FROM,
    HEADER_TOPIC,
    DeadLetterSink,
)
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.runtime import decoding
from tiltstream.streams.samples import sample_event
from tiltstream.streams.serde import AvroSerde

pytestmark = pytest.mark.kafka


class Setup:
    """The pipeline's topics laid out as ``topics apply`` does (no dead-letter topic), and producers."""

    def __init__(self, settings: CliSettings, group: str) -> None:
        self.settings = settings
        self.group = group
        self.catalogue = Catalogue(settings.topics)
        self.admin = create_admin(settings.kafka)
        apply_topics(self.admin, self.catalogue.all_topics())
        self.topic = self.catalogue.topic("movie.acquired").name
        self.raw = create_producer(settings.kafka)
        self.serde = AvroSerde()

    def put(
        self, value: bytes, partition: int = 0, headers: list[tuple[str, str | bytes | None]] | None = None
    ) -> int:
        """Produce raw bytes to ``movie.acquired[partition]``; return the offset."""
        offsets: list[int] = []
        self.raw.produce(
            self.topic,
            value,
            b"cm40000-1:Position_1",
            partition=partition,
            headers=headers or [],
            on_delivery=lambda err, msg: offsets.append(-1 if err else int(msg.offset() or 0)),
        )
        self.raw.flush(30)
        assert offsets
        assert offsets[0] >= 0
        return offsets[0]

    def movie(self, tilt: int, **changes: Any) -> tuple[str, bytes]:
        """A MovieAcquired (its movie id and its bytes)."""
        value = {**sample_event("MovieAcquired", 1, tilt), **changes}
        return str(value["movie_id"]), self.serde.encode("MovieAcquired", value)

    def member(
        self, sink: DeadLetterSink | None = None, overrides: dict[str, int] | None = None
    ) -> EventConsumer:
        consumer = EventConsumer(
            create_consumer(self.settings.kafka, self.group, **(overrides or {})),
            self.catalogue,
            sink or DeadLetterSink(self.raw, self.catalogue, self.group, admin=self.admin),
            retry_initial_seconds=0.2,
            retry_max_seconds=1.0,
        )
        consumer.subscribe([self.topic])
        return consumer

    def committed(self, partition: int = 0) -> int:
        check = create_consumer(self.settings.kafka, self.group)
        try:
            found = check.committed([TopicPartition(self.topic, partition)], timeout=20)
            return int(found[0].offset)
        finally:
            check.close()

    def end(self, partition: int = 0) -> int:
        check = create_consumer(self.settings.kafka, "watermarks")
        try:
            return int(check.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=20)[1])
        finally:
            check.close()


def dead_letters(settings: CliSettings, topic: str) -> list[tuple[bytes | None, dict[str, str]]]:
    """Every message of a dead-letter topic, raw: its value and its headers."""
    reader = create_consumer(settings.kafka, "dlq-reader", **{"enable.partition.eof": True})
    partitions = [TopicPartition(topic, p, 0) for p in range(settings.topics.partitions)]
    ends = {tp.partition: reader.get_watermark_offsets(tp, timeout=20)[1] for tp in partitions}
    reader.assign([tp for tp in partitions if ends[tp.partition] > 0])
    found: list[tuple[int, bytes | None, dict[str, str]]] = []
    deadline = time.monotonic() + 30
    while len(found) < sum(ends.values()) and time.monotonic() < deadline:
        message = reader.poll(0.5)
        if message is not None and message.error() is None:
            pairs = message.headers() or []
            items = pairs.items() if isinstance(pairs, dict) else pairs
            headers = {k: v.decode() if isinstance(v, bytes) else "" for k, v in items}
            found.append((int(message.timestamp()[1]), message.value(), headers))
    reader.close()
    return [(value, headers) for _, value, headers in sorted(found, key=lambda f: f[0])]


def poll_until(
    member: EventConsumer, done: Any, *, ack: bool = True, timeout: float = 60.0
) -> list[ConsumedEvent]:
    """Poll (marking events done when ``ack``) until ``done(events)`` holds or ``timeout`` passes."""
    got: list[ConsumedEvent] = []
    deadline = time.monotonic() + timeout
    while not done(got) and time.monotonic() < deadline:
        event = member.poll(0.3)
        if event is not None:
            got.append(event)
            if ack:
                member.done(event)
    return got


def caught_up(member: EventConsumer, partition: int, end: int) -> bool:
    assigned = [tp for tp in member.consumer.assignment() if tp.partition == partition]
    return bool(assigned) and member.consumer.position(assigned)[0].offset >= end


def refuse_nan_dose(record: str, value: Mapping[str, Any]) -> None:
    """A stand-in validator with check_event's interface (the real rules are the validation work's)."""
    dose = value.get("dose_e_per_angstrom2")
    if isinstance(dose, float) and not math.isfinite(dose):
        raise InvalidEventError(record.rpartition(".")[2], "dose_e_per_angstrom2", "not a finite number")


def test_decode_skip_dead_letter_and_validate_in_one_pass(
    pipeline_settings: CliSettings, group_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decoding, "check_event", refuse_nan_dose)
    setup = Setup(pipeline_settings, group_id)
    dlq = setup.catalogue.dlq(group_id)
    other = setup.catalogue.dlq(f"{group_id}-other").name
    first, first_bytes = setup.movie(0)
    setup.put(first_bytes)
    garbage_offset = setup.put(b"\x00garbage", headers=[("origin", b"test")])
    _, for_other = setup.movie(1)
    setup.put(for_other, headers=[(HEADER_REINJECTED_FROM, f"{other}/0/7".encode())])
    ours, for_us = setup.movie(2)
    setup.put(for_us, headers=[(HEADER_REINJECTED_FROM, f"{dlq.name}/0/3".encode())])
    _, nan_bytes = setup.movie(3, dose_e_per_angstrom2=float("nan"))
    nan_offset = setup.put(nan_bytes)
    last, last_bytes = setup.movie(4)
    setup.put(last_bytes)

    member = setup.member()
    events = poll_until(member, lambda got: any(e.event.value["movie_id"] == last for e in got))
    member.close()
    assert [e.event.value["movie_id"] for e in events] == [first, ours, last]
    assert member.dead_lettered == 2
    assert member.metrics.skipped._value.get() == 1
    assert setup.committed() == setup.end()

    letters = dead_letters(pipeline_settings, dlq.name)  # a topic the runtime laid out itself
    assert [value for value, _ in letters] == [b"\x00garbage", nan_bytes]
    garbage, invalid = (headers for _, headers in letters)
    assert (garbage[HEADER_TOPIC], garbage[HEADER_PARTITION]) == (setup.topic, "0")
    assert garbage[HEADER_OFFSET] == str(garbage_offset)
    assert garbage[HEADER_CLASS] == "tiltstream.streams.errors.UndecodableEventError"
    assert garbage["origin"] == "test"
    assert invalid[HEADER_OFFSET] == str(nan_offset)
    assert invalid[HEADER_CLASS] == "tiltstream.streams.errors.InvalidEventError"
    assert "MovieAcquired.dose_e_per_angstrom2: not a finite number" in invalid[HEADER_MESSAGE]
    assert f"{setup.topic}[0]@{nan_offset}" in invalid[HEADER_MESSAGE]

    again = setup.member()  # a restart starts behind everything, the poison messages included
    end = setup.end()
    # nothing consumed leaves the position unset, so: assigned, then three seconds more of polling
    redelivered = poll_until(again, lambda _: bool(again.consumer.assignment()))
    redelivered += poll_until(again, lambda _: False, timeout=3.0)
    assert redelivered == []
    assert again.consumer.committed([TopicPartition(setup.topic, 0)], timeout=20)[0].offset == end
    again.close()
    assert again.dead_lettered == 0


def test_offsets_are_stored_only_past_finished_work(pipeline_settings: CliSettings, group_id: str) -> None:
    setup = Setup(pipeline_settings, group_id)
    offsets = [setup.put(setup.movie(tilt)[1]) for tilt in range(3)]
    first = setup.member()
    got = poll_until(first, lambda got: len(got) == 3, ack=False)
    for event in got[1:]:
        first.done(event)  # the later two are finished, the first is not
    first.close()
    assert setup.committed() < offsets[0] + 1  # nothing stored past the unfinished first

    second = setup.member()
    redelivered = poll_until(second, lambda got: len(got) == 3, ack=False)
    assert [e.offset for e in redelivered] == offsets
    second.done(redelivered[0])
    second.close()
    assert setup.committed() == offsets[0] + 1


def test_pause_holds_messages_back_and_keeps_the_group(pipeline_settings: CliSettings, group_id: str) -> None:
    setup = Setup(pipeline_settings, group_id)
    member = setup.member(overrides={"max.poll.interval.ms": 6000, "session.timeout.ms": 6000})
    poll_until(member, lambda _: member.rebalances > 0)
    assert member.rebalances == 1
    member.pause()
    member.poll(0.1)  # the pause takes effect on the next poll
    movies = [setup.movie(tilt) for tilt in range(2)]
    for _, value in movies:
        setup.put(value)
    held_back = poll_until(member, lambda _: False, timeout=9)  # longer than max.poll.interval.ms
    member.resume()
    got = poll_until(member, lambda got: len(got) == 2)
    rebalances = member.rebalances
    member.close()
    assert held_back == []
    assert [e.event.value["movie_id"] for e in got] == [movie_id for movie_id, _ in movies]
    assert rebalances == 1  # never revoked or lost while paused


def test_stop_hands_out_nothing_more_and_commits_what_is_done(
    pipeline_settings: CliSettings, group_id: str
) -> None:
    setup = Setup(pipeline_settings, group_id)
    offsets = [setup.put(setup.movie(tilt)[1]) for tilt in range(3)]
    member = setup.member()
    got = poll_until(member, lambda got: len(got) == 1)
    member.stop()
    after_stop = poll_until(member, lambda _: False, timeout=3)
    member.close()
    assert after_stop == []
    assert [e.offset for e in got] == offsets[:1]
    assert setup.committed() == offsets[0] + 1
    rest = setup.member()
    assert [e.offset for e in poll_until(rest, lambda got: len(got) == 2)] == offsets[1:]
    rest.close()


def test_a_dead_letter_the_broker_refuses_waits_in_the_group_and_is_never_skipped(
    pipeline_settings: CliSettings, group_id: str
) -> None:
    """No right to create topics (no admin client) and no dead-letter topic: the poison message waits."""
    setup = Setup(pipeline_settings, group_id)
    quick = create_producer(
        pipeline_settings.kafka, **{"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 5000}
    )
    sink = DeadLetterSink(quick, setup.catalogue, group_id)
    garbage = setup.put(b"\x00garbage", partition=0)
    behind = setup.put(setup.movie(0)[1], partition=0)
    elsewhere, elsewhere_bytes = setup.movie(1)
    setup.put(elsewhere_bytes, partition=1)
    member = setup.member(sink)
    got = poll_until(
        member, lambda got: bool(got) and member.metrics.dead_letter_retries._value.get() >= 2, timeout=90
    )
    assert elsewhere in {e.event.value["movie_id"] for e in got}  # the other partitions carry on
    assert member.pending_dead_letters == 1
    member.commit()
    assert setup.committed(0) <= garbage  # not past the poison message while it is not dead-lettered
    assert member.rebalances == 1

    apply_topics(setup.admin, [setup.catalogue.dlq(group_id)])  # an operator lays the topic out
    rest = poll_until(
        member,
        lambda _: member.pending_dead_letters == 0 and caught_up(member, 0, behind + 1),
        timeout=90,
    )
    got += rest
    member.close()
    assert member.dead_lettered == 1
    assert behind in {e.offset for e in got if e.partition == 0}
    assert setup.committed(0) == behind + 1
    letters = dead_letters(pipeline_settings, setup.catalogue.dlq(group_id).name)
    assert [value for value, _ in letters] == [b"\x00garbage"]
