"""The aggregator's typed decode path: the same records, checks and errors as the dict path (no broker)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from aggregator_scenarios import typed, with_defaults

from tiltstream.streams.aggregator import INPUT_RECORDS, INPUT_TYPES, InputRecord
from tiltstream.streams.errors import InvalidEventError, UndecodableEventError
from tiltstream.streams.events import MovieAcquired, TomogramDenoised
from tiltstream.streams.runtime.decoding import MessageDecoder
from tiltstream.streams.samples import sample_event
from tiltstream.streams.serde import AvroSerde

SERDE = AvroSerde()
DECODER = MessageDecoder(SERDE, dlq_topic="dlq.aggregator")
WHERE: dict[str, Any] = {"topic": "movie.acquired", "partition": 3, "offset": 41}


@pytest.mark.parametrize("kind", INPUT_TYPES, ids=INPUT_RECORDS)
def test_typed_decode_gives_the_record_of_the_dict_decode(kind: type[InputRecord]) -> None:
    value = with_defaults(kind.__name__, sample_event(kind.__name__, 2, 5))
    data = SERDE.encode(kind.__name__, value)
    event = DECODER.decode_typed_bytes(data, kind, **WHERE)
    assert type(event) is kind
    assert event == kind.from_dict(DECODER.decode_bytes(data, kind.__name__, **WHERE).value)
    assert event == typed(kind.__name__, value)


@pytest.mark.parametrize(
    ("field", "bad"),
    [("dose_e_per_angstrom2", math.nan), ("movie", {"root": "raw", "path": "/etc/passwd"})],
)
def test_an_invalid_value_is_refused_naming_field_and_position(field: str, bad: object) -> None:
    value = {**sample_event("MovieAcquired", 1, 0), field: bad}
    data = SERDE.encode("MovieAcquired", value)  # the serde encodes it; only the checks refuse it
    with pytest.raises(InvalidEventError) as typed_error:
        DECODER.decode_typed_bytes(data, MovieAcquired, **WHERE)
    with pytest.raises(InvalidEventError) as dict_error:
        DECODER.decode_bytes(data, "MovieAcquired", **WHERE)
    error = typed_error.value
    assert error.field.split(".")[0] == field
    assert (error.topic, error.partition, error.offset) == ("movie.acquired", 3, 41)
    assert str(error) == str(dict_error.value)
    unchecked = MessageDecoder(SERDE, validate=False).decode_typed_bytes(data, MovieAcquired, **WHERE)
    assert unchecked.metadata.event_id == value["metadata"]["event_id"]  # decodes when not validating


def test_bytes_of_another_record_or_none_are_undecodable_with_their_position() -> None:
    data = SERDE.encode("TomogramDenoised", sample_event("TomogramDenoised", 1))
    assert isinstance(DECODER.decode_typed_bytes(data, TomogramDenoised, **WHERE), TomogramDenoised)
    for wrong in (data, None, b"\xc3\x01short"):
        with pytest.raises(UndecodableEventError) as caught:
            DECODER.decode_typed_bytes(wrong, MovieAcquired, **WHERE)
        assert not isinstance(caught.value, InvalidEventError)
        assert (caught.value.topic, caught.value.partition, caught.value.offset) == ("movie.acquired", 3, 41)
