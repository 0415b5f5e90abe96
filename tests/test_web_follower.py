"""The web view's follower reads through the consumer runtime's decode path: filter, decode, validate.

It reads outside any consumer group, so it dead-letters nothing: what it cannot use it skips, and the
pages keep showing the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from web_fixtures import SESSION, status_event

from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.dlq import HEADER_REINJECTED_FROM
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.runtime import decoding
from tiltstream.streams.serde import AvroSerde
from tiltstream.web.live import StatusFollower

pytestmark = pytest.mark.kafka


def refuse_nul(record: str, value: Mapping[str, Any]) -> None:
    """A stand-in validator with check_event's interface (the real rules are the validation work's)."""
    if "\x00" in str(value.get("message") or ""):
        raise InvalidEventError(record.rpartition(".")[2], "message", "holds a NUL byte")


def test_follower_skips_garbage_invalid_and_reinjected_statuses_and_keeps_the_rest(
    pipeline_settings: CliSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decoding, "check_event", refuse_nul)
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    raw = create_producer(pipeline_settings.kafka)
    serde = AvroSerde()
    reinjected: list[tuple[str, str | bytes | None]] = [
        (HEADER_REINJECTED_FROM, f"{catalogue.dlq('some-group').name}/0/0")
    ]
    messages = [  # all on one partition, in this order: the last one read means all were
        (9, b"\x00garbage", []),
        (1, serde.encode("TiltSeriesStatus", status_event(1, "acquiring", 3)), []),
        (2, serde.encode("TiltSeriesStatus", status_event(2, "acquiring", 3)), reinjected),
        (3, serde.encode("TiltSeriesStatus", status_event(3, "failed", 3, message="bad\x00tilt")), []),
        (4, serde.encode("TiltSeriesStatus", status_event(4, "acquiring", 3)), []),
    ]
    for series, value, headers in messages:
        key = f"{SESSION}:Position_{series}".encode()
        raw.produce(catalogue.topic("tiltseries.status").name, value, key, partition=0, headers=headers)
    raw.flush(10)
    follower = StatusFollower(pipeline_settings.kafka, catalogue)
    follower.start()
    try:
        seen = follower.wait_for(lambda f: f.status(f"{SESSION}:Position_4") is not None, 60)
        statuses = follower.statuses(SESSION)
    finally:
        follower.stop()
    assert seen
    assert sorted(statuses) == [f"{SESSION}:Position_1", f"{SESSION}:Position_4"]
