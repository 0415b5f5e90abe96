"""The generated typed records: in step with schemas/, byte-identical to fastavro, and typed for mypy."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.schemas.codegen import GENERATED_MODULE, generate_module, main
from tiltstream.schemas.codegen_types import UnsupportedSchemaError
from tiltstream.settings import CliSettings
from tiltstream.streams import events
from tiltstream.streams.catalogue import EVENT_RECORDS
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.events import CODECS, DataPath, MovieAcquired, MovieMotionCorrected
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import SchemaRegistry, default_registry, schemas_directory
from tiltstream.streams.serde import AvroSerde, StaleEventsModuleError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def serde() -> AvroSerde:
    return AvroSerde()


def _fastavro_bytes(record: str, value: Mapping[str, object]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(default_registry().current(record).schema), value)
    return out.getvalue()


def test_committed_module_equals_the_generator_output() -> None:
    assert GENERATED_MODULE.read_text(encoding="utf-8") == generate_module(), (
        "tiltstream/streams/events.py is stale: regenerate it with python -m tiltstream.schemas.codegen"
    )
    assert "do not edit" in GENERATED_MODULE.read_text(encoding="utf-8").splitlines()[2]


def test_cli_writes_the_committed_module(tmp_path: Path) -> None:
    output = tmp_path / "events.py"
    result = CliRunner().invoke(create_app(CliSettings()), ["schemas", "generate", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8") == GENERATED_MODULE.read_text(encoding="utf-8")


def test_a_schema_change_makes_the_module_stale(evolved_schemas: Path, tmp_path: Path) -> None:
    module = tmp_path / "events.py"
    shutil.copy(GENERATED_MODULE, module)
    result = CliRunner().invoke(
        create_app(CliSettings()),
        ["schemas", "generate", "--check", "--dir", str(evolved_schemas), "--output", str(module)],
    )
    assert result.exit_code == 1, result.output
    assert "stale" in result.output
    assert "stage_z_micrometres: float | None = None" in generate_module(SchemaRegistry(evolved_schemas))
    assert main(["--check", "--output", str(module)]) == 0  # the installed schemas: up to date


def test_every_record_has_a_frozen_slotted_class_with_its_docs() -> None:
    registry = default_registry()
    for entry in registry:
        cls = getattr(events, entry.short_name)
        assert entry.short_name in events.__all__
        assert [f.name for f in dataclasses.fields(cls)] == [f["name"] for f in entry.schema["fields"]]
        assert "__slots__" in vars(cls)
        assert CODECS[cls].fingerprint == entry.fingerprint
        for field in entry.schema["fields"]:
            assert " ".join(field["doc"].split()[:4]) in " ".join((cls.__doc__ or "").split()), field["name"]
    event = MovieAcquired.from_dict(sample_event("MovieAcquired"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.tilt_angle_degrees = 3.0  # type: ignore[misc]


@pytest.mark.parametrize("record", EVENT_RECORDS)
def test_generated_codec_writes_and_reads_what_fastavro_does(record: str) -> None:
    cls = getattr(events, record)
    codec = CODECS[cls]
    schema = default_registry().current(record).schema
    values = [sample_event(record, series=2, tilt=t) for t in range(5)] + list(generate_many(schema, 40))
    for value in values:
        expected = _fastavro_bytes(record, value)
        as_dict = schemaless_reader(io.BytesIO(expected), parse_schema(schema))  # datetimes, not ints
        typed = cls.from_dict(as_dict)
        out = bytearray()
        codec.write(out, typed)
        assert bytes(out) == expected
        back, end = codec.read(expected, 0)
        assert end == len(expected)
        assert back == typed
        assert back.to_dict() == as_dict


@pytest.mark.parametrize("size", [0, 1, 31, 32, 63, 64, 65, 200, 8191, 8192, 20000])
def test_strings_of_every_length_class_match_fastavro(size: int) -> None:
    text = "é" * (size // 2) + "p" * (size % 2)  # size bytes of UTF-8
    assert len(text.encode()) == size
    value = {"root": text, "path": "x" * size}
    expected = _fastavro_bytes("DataPath", value)
    out = bytearray()
    CODECS[DataPath].write(out, DataPath.from_dict(value))
    assert bytes(out) == expected
    assert CODECS[DataPath].read(expected, 0) == (DataPath.from_dict(value), len(expected))


@pytest.mark.parametrize(
    "number",
    [0, 1, -1, 63, 64, -64, -65, 127, 128, 2**31 - 1, -(2**31), 2**40, -(2**40), 2**63 - 1, -(2**63)],
)
def test_integers_of_every_width_match_fastavro(number: int) -> None:
    value = sample_event("ProcessingFailed")
    value["input_offset"] = number  # long
    if -(2**31) <= number < 2**31:
        value["attempts"] = number  # int
    expected = _fastavro_bytes("ProcessingFailed", value)
    out = bytearray()
    CODECS[events.ProcessingFailed].write(out, events.ProcessingFailed.from_dict(value))
    assert bytes(out) == expected
    back, _ = CODECS[events.ProcessingFailed].read(expected, 0)
    assert (back.input_offset, back.attempts) == (number, value["attempts"])


@pytest.mark.parametrize("record", EVENT_RECORDS)
def test_typed_and_dict_paths_read_each_other(serde: AvroSerde, record: str) -> None:
    cls = getattr(events, record)
    value = sample_event(record, series=4, tilt=9)
    from_dicts = serde.encode(record, value)
    assert serde.encode_typed(cls.from_dict(value)) == from_dicts
    assert serde.decode_typed(from_dicts, cls) == cls.from_dict(value)
    assert serde.decode(serde.encode_typed(cls.from_dict(value))).value == value


def test_decoded_records_carry_typed_values(serde: AvroSerde) -> None:
    data = serde.encode("MovieMotionCorrected", sample_event("MovieMotionCorrected", tilt=3))
    event: MovieMotionCorrected = serde.decode_typed(data, MovieMotionCorrected)
    assert isinstance(event.metadata.occurred_at, datetime)
    assert event.metadata.occurred_at.utcoffset() is not None
    assert isinstance(event.micrograph, DataPath)
    assert isinstance(event.frame_shifts, tuple)
    assert all(shift.frame_index == i for i, shift in enumerate(event.frame_shifts))


def test_new_writer_resolves_into_the_generated_record(tmp_path: Path, evolved_schemas: Path) -> None:
    """A service whose generated module predates a field reads a newer writer's events."""
    value = {**sample_event("MovieAcquired", tilt=2), "stage_z_micrometres": 12.5}
    new_bytes = AvroSerde(SchemaRegistry(evolved_schemas)).encode("MovieAcquired", value)
    old_dir = tmp_path / "old"
    shutil.copytree(schemas_directory(), old_dir)
    shutil.copy(
        max((evolved_schemas / "history" / "MovieAcquired").glob("v*.avsc"), key=lambda p: int(p.stem[1:])),
        old_dir / "history" / "MovieAcquired",
    )
    event = AvroSerde(SchemaRegistry(old_dir)).decode_typed(new_bytes, MovieAcquired)
    assert event == MovieAcquired.from_dict(sample_event("MovieAcquired", tilt=2))


def test_stale_module_refuses_to_encode(evolved_schemas: Path) -> None:
    newer = AvroSerde(SchemaRegistry(evolved_schemas))
    with pytest.raises(StaleEventsModuleError, match="regenerate"):
        newer.encode_typed(MovieAcquired.from_dict(sample_event("MovieAcquired")))
    # reading still works: the body is resolved into the registry's schema, then into the record
    old_bytes = AvroSerde().encode("MovieAcquired", sample_event("MovieAcquired"))
    assert newer.decode_typed(old_bytes, MovieAcquired) == MovieAcquired.from_dict(
        sample_event("MovieAcquired")
    )


def _movie(**changes: object) -> MovieAcquired:
    return dataclasses.replace(MovieAcquired.from_dict(sample_event("MovieAcquired")), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_movie(acquisition_order=2**31), "outside the range of an Avro int"),
        (_movie(tilt_angle_degrees="3"), "MovieAcquired"),
        (_movie(movie_id=None), "MovieAcquired"),
        (_movie(acquired_at=datetime(2026, 1, 1)), "no time zone"),
        (_movie(movie=None), "MovieAcquired"),
    ],
)
def test_encode_typed_refuses_values_the_schema_cannot_carry(
    serde: AvroSerde, event: MovieAcquired, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        serde.encode_typed(event)


def test_encode_typed_refuses_other_objects(serde: AvroSerde) -> None:
    with pytest.raises(TypeError, match="not a record"):
        serde.encode_typed(sample_event("MovieAcquired"))
    with pytest.raises(TypeError, match="not a record"):
        serde.decode_typed(b"", dict)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:40], "corrupt MovieAcquired body"),
        (lambda d: d + b"\x00", "trailing bytes"),
        (lambda d: d[:2] + b"\x00" * 8 + d[10:], "no schema with fingerprint"),
        (lambda d: d.replace(b"cm40000-1", b"cm4\xff\xfe0-1"), "UnicodeDecodeError"),
        (lambda d: d.replace(b"\x02\x06raw", b"\x04\x06raw"), "union branch"),
    ],
)
def test_undecodable_typed_bytes_are_named_and_the_rest_carries_on(
    serde: AvroSerde, mangle: Callable[[bytes], bytes], reason: str
) -> None:
    good = [serde.encode_typed(_movie(acquisition_order=i)) for i in range(3)]
    batch = [good[0], mangle(good[1]), good[2]]
    decoded, errors = [], []
    for offset, data in enumerate(batch):
        try:
            decoded.append(serde.decode_typed(data, MovieAcquired, topic="t", partition=1, offset=offset))
        except UndecodableEventError as exc:
            errors.append(exc)
    assert [event.acquisition_order for event in decoded] == [0, 2]
    assert len(errors) == 1
    assert reason in str(errors[0])
    assert errors[0].offset == 1


def test_wrong_record_is_undecodable_as_typed(serde: AvroSerde) -> None:
    data = serde.encode("CtfEstimated", sample_event("CtfEstimated"))
    with pytest.raises(UndecodableEventError, match="not the expected"):
        serde.decode_typed(data, MovieAcquired)


def test_mypy_checks_uses_of_the_records(tmp_path: Path) -> None:
    """The records are typed for mypy --strict: a misspelt field or a wrong type is a type error."""
    snippet = tmp_path / "uses.py"
    snippet.write_text(
        "from tiltstream.streams.events import MovieAcquired\n"
        "from tiltstream.streams.serde import AvroSerde\n\n\n"
        "def angle(data: bytes) -> float:\n"
        "    event = AvroSerde().decode_typed(data, MovieAcquired)\n"
        "    name: str = event.mdoc\n"
        "    return event.tilt_angle_degreez\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-incremental",
            str(snippet),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert '"MovieAcquired" has no attribute "tilt_angle_degreez"' in done.stdout
    assert 'expression has type "DataPath | None", variable has type "str"' in done.stdout


def test_generator_handles_enums_maps_nested_arrays_and_null_second(tmp_path: Path) -> None:
    directory = tmp_path / "schemas"
    directory.mkdir()
    mode = {"type": "enum", "name": "Mode", "symbols": ["FAST", "SLOW"]}
    fields: list[dict[str, Any]] = [
        {"name": "mode", "type": mode},
        {"name": "spare", "type": ["Mode", "null"], "default": "SLOW"},  # an enum, null second
        {"name": "tags", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
        {
            "name": "times",
            "type": {"type": "array", "items": {"type": "long", "logicalType": "timestamp-millis"}},
        },
        {"name": "maybe", "type": {"type": "array", "items": ["null", "float"]}},
        {"name": "flag", "type": "boolean"},
        {"name": "blob", "type": "bytes"},
        {"name": "ratio", "type": "float"},
    ]
    kitchen = {
        "type": "record",
        "name": "Kitchen",
        "namespace": "tiltstream.events",
        "doc": "Every construct the generator supports.",
        "fields": [{**field, "doc": f"The {field['name']}."} for field in fields],
    }
    (directory / "tiltstream.events.Kitchen.avsc").write_text(json.dumps(kitchen))
    registry = SchemaRegistry(directory)
    module_path = tmp_path / "generated_kitchen.py"
    module_path.write_text(generate_module(registry))
    sys.path.insert(0, str(tmp_path))
    try:
        import generated_kitchen  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    assert issubclass(generated_kitchen.Mode, str)
    schema = parse_schema(registry.current("Kitchen").schema)
    for value in generate_many(registry.current("Kitchen").schema, 60):
        out = io.BytesIO()
        schemaless_writer(out, schema, value)
        expected = out.getvalue()
        as_dict = schemaless_reader(io.BytesIO(expected), schema)
        typed = generated_kitchen.Kitchen.from_dict(as_dict)
        codec = generated_kitchen.CODECS[generated_kitchen.Kitchen]
        written = bytearray()
        codec.write(written, typed)
        assert bytes(written) == expected
        back, _ = codec.read(expected, 0)
        assert back == typed
        assert back.to_dict() == as_dict


@pytest.mark.parametrize(
    ("field_type", "reason"),
    [
        (["null", "string", "int"], "two-branch unions with null"),
        ("null", "only as a branch of a union"),
        ({"type": "int", "logicalType": "date"}, "logical type 'date'"),
        ({"type": "fixed", "name": "Digest", "size": 16}, "fixed types are not supported"),
    ],
)
def test_generator_refuses_what_its_codecs_do_not_implement(
    tmp_path: Path, field_type: object, reason: str
) -> None:
    record = {
        "type": "record",
        "name": "Odd",
        "namespace": "tiltstream.events",
        "doc": "A record the generator cannot handle.",
        "fields": [{"name": "odd", "type": field_type, "doc": "The odd field."}],
    }
    (tmp_path / "tiltstream.events.Odd.avsc").write_text(json.dumps(record))
    with pytest.raises(UnsupportedSchemaError, match=reason) as info:
        generate_module(SchemaRegistry(tmp_path))
    assert "tiltstream.events.Odd.odd" in str(info.value)
