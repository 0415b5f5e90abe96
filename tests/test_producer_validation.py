"""The producer refuses events whose values cannot be true; nothing of them reaches the topic."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import read_events
from tiltstream.streams.samples import sample_event

pytestmark = pytest.mark.kafka


def _movie(tilt: int, **changes: Any) -> dict[str, Any]:
    value = sample_event("MovieAcquired", 1, tilt)
    movie = changes.pop("movie_path", None)
    if movie is not None:
        value["movie"] = {"root": "raw", "path": movie}
    return {**value, **changes}


BAD: dict[int, tuple[dict[str, Any], str, str]] = {
    1: ({"dose_e_per_angstrom2": math.nan}, "dose_e_per_angstrom2", "not a finite number"),
    2: ({"voltage_kv": math.inf}, "voltage_kv", "not a finite number"),
    3: ({"tilt_angle_degrees": 9999.0}, "tilt_angle_degrees", "outside [-90, 90]"),
    4: ({"movie_path": "cm40000-1/Position_1_005\x00.tiff"}, "movie.path", "NUL byte"),
    5: ({"movie_path": "C:\\cm40000-1\\Position_1_006.tiff"}, "movie.path", "drive letter"),
    6: ({"movie_path": "\\\\storage\\cm40000-1\\Position_1_007.tiff"}, "movie.path", "UNC path"),
}


def test_bad_values_are_refused_at_send_and_the_rest_of_the_series_is_sent(
    pipeline_settings: CliSettings,
) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    producer = EventProducer(create_producer(pipeline_settings.kafka), catalogue)
    deliveries = []
    for tilt in range(10):
        if tilt not in BAD:
            deliveries.append(producer.send("MovieAcquired", _movie(tilt)))
            continue
        changes, field, reason = BAD[tilt]
        with pytest.raises(InvalidEventError) as caught:
            producer.send("MovieAcquired", _movie(tilt, **changes))
        assert (caught.value.record, caught.value.field) == ("MovieAcquired", field)
        assert reason in caught.value.reason
    producer.wait(deliveries)

    events = list(read_events(pipeline_settings.kafka, [catalogue.for_record("MovieAcquired")]))
    orders = sorted(e.value["acquisition_order"] for e in events if e.value)
    assert orders == [t for t in range(10) if t not in BAD]
