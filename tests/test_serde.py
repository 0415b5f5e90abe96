"""Avro single-object encoding: round trips, schema resolution across versions, clear errors."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import pytest
from fastavro import schemaless_reader
from fastavro.utils import generate_many

from tiltstream.streams.catalogue import EVENT_RECORDS
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import SchemaRegistry, schemas_directory
from tiltstream.streams.serde import MAGIC, AvroSerde


@pytest.fixture(scope="module")
def serde() -> AvroSerde:
    return AvroSerde()


@pytest.mark.parametrize("record", EVENT_RECORDS)
def test_sample_round_trip(serde: AvroSerde, record: str) -> None:
    value = sample_event(record, series=3, tilt=7)
    data = serde.encode(record, value)
    assert data[:2] == MAGIC
    assert struct.unpack_from("<Q", data, 2)[0] == serde.registry.current(record).fingerprint
    decoded = serde.decode(data, reader=record)
    assert decoded.short_record == record
    assert decoded.value == value


@pytest.mark.parametrize("record", EVENT_RECORDS)
def test_random_values_round_trip_byte_for_byte(serde: AvroSerde, record: str) -> None:
    schema = serde.registry.current(record).schema
    for value in generate_many(schema, 25):
        data = serde.encode(record, value)
        again = serde.encode(record, serde.decode(data).value)
        assert again == data


def test_body_is_plain_avro_binary(serde: AvroSerde) -> None:
    """Any Avro implementation can read the payload after the 10-byte header."""
    value = sample_event("CtfEstimated")
    data = serde.encode("CtfEstimated", value)
    schema = serde.registry.current("CtfEstimated").schema
    assert schemaless_reader(io.BytesIO(data[10:]), schema) == value


def test_encode_rejects_wrong_value(serde: AvroSerde) -> None:
    value = sample_event("MovieAcquired")
    del value["tilt_angle_degrees"]
    with pytest.raises(ValueError, match="MovieAcquired"):
        serde.encode("MovieAcquired", value)
    with pytest.raises(ValueError, match="MovieAcquired"):
        serde.encode("MovieAcquired", {**sample_event("MovieAcquired"), "tilt_angel_degrees": 3.0})


def test_missing_fields_with_defaults_take_the_default(serde: AvroSerde) -> None:
    """Producers written before a compatible schema change (a field added with a default) still encode."""
    value = sample_event("MovieAcquired")
    del value["position_name"]  # optional, default null
    del value["metadata"]["causation_id"]
    decoded = serde.decode(serde.encode("MovieAcquired", value)).value
    assert decoded["position_name"] is None
    assert decoded["metadata"]["causation_id"] is None


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: b"", "not Avro single-object"),
        (lambda d: b'{"json": true}', "not Avro single-object"),
        (lambda d: d[:2] + b"\x00" * 8 + d[10:], "no schema with fingerprint"),
        (lambda d: d[:40], "corrupt MovieAcquired body"),
        (lambda d: d + b"\x00\x01", "trailing bytes"),
    ],
)
def test_undecodable_bytes_name_their_position(serde: AvroSerde, mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    data = mangle(serde.encode("MovieAcquired", sample_event("MovieAcquired")))
    with pytest.raises(UndecodableEventError, match=reason) as info:
        serde.decode(
            data, reader="MovieAcquired", topic="tiltstream.movie.acquired", partition=3, offset=1234
        )
    assert "tiltstream.movie.acquired[3]@1234" in str(info.value)
    assert (info.value.topic, info.value.partition, info.value.offset) == (
        "tiltstream.movie.acquired",
        3,
        1234,
    )


def test_wrong_record_for_topic_is_undecodable(serde: AvroSerde) -> None:
    data = serde.encode("CtfEstimated", sample_event("CtfEstimated"))
    with pytest.raises(UndecodableEventError, match="not the expected"):
        serde.decode(data, reader="MovieAcquired", topic="t", partition=0, offset=0)


def test_tombstone_is_undecodable(serde: AvroSerde) -> None:
    with pytest.raises(UndecodableEventError, match="tombstone"):
        serde.decode(None, topic="t", partition=0, offset=9)


def test_new_reader_reads_old_writer_with_defaults(evolved_schemas: Path, serde: AvroSerde) -> None:
    old_bytes = serde.encode("MovieAcquired", sample_event("MovieAcquired", tilt=4))
    new = AvroSerde(SchemaRegistry(evolved_schemas))
    decoded = new.decode(old_bytes, reader="MovieAcquired")
    assert decoded.value["stage_z_micrometres"] is None
    assert decoded.value["tilt_angle_degrees"] == sample_event("MovieAcquired", tilt=4)["tilt_angle_degrees"]


def test_old_reader_reads_new_writer_by_fingerprint(tmp_path: Path, evolved_schemas: Path) -> None:
    directory = evolved_schemas
    new = AvroSerde(SchemaRegistry(directory))
    value = {**sample_event("MovieAcquired"), "stage_z_micrometres": 12.5}
    new_bytes = new.encode("MovieAcquired", value)
    # An old service that knows v2 only as a frozen history entry (its own current schema is v1).
    old_dir = tmp_path / "old"
    shutil.copytree(schemas_directory(), old_dir)
    shutil.copy(
        max((directory / "history" / "MovieAcquired").glob("v*.avsc"), key=lambda p: int(p.stem[1:])),
        old_dir / "history" / "MovieAcquired",
    )
    old = AvroSerde(SchemaRegistry(old_dir))
    decoded = old.decode(new_bytes, reader="MovieAcquired")
    assert "stage_z_micrometres" not in decoded.value
    assert decoded.value["movie_id"] == value["movie_id"]
    # Without that history entry the fingerprint is unknown: a clear error, not garbage.
    with pytest.raises(UndecodableEventError, match="fingerprint"):
        AvroSerde(SchemaRegistry(schemas_directory())).decode(new_bytes, reader="MovieAcquired")
