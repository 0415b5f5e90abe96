"""The event catalogue's schemas: complete, documented, with units in names, and evolvable."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.streams.catalogue import EVENT_RECORDS
from tiltstream.streams.compat import full_incompatibilities, read_incompatibilities
from tiltstream.streams.schema_history import check_history, freeze_history
from tiltstream.streams.schema_registry import SchemaRegistry, default_registry, schemas_directory

DESIGN_RECORDS = {
    "MovieAcquired",
    "SessionParametersSet",
    "TiltSeriesAcquisitionEnded",
    "MovieMotionCorrected",
    "CtfEstimated",
    "ReconstructionRequested",
    "TomogramReconstructed",
    "TomogramDenoised",
    "ProcessingFailed",
    "TiltSeriesStatus",
}
UNIT_SUFFIXES = (
    "_degrees",
    "_angstroms",
    "_e_per_angstrom2",
    "_kv",
    "_mm",
    "_seconds",
    "_micrometres",
    "_pixels",
    "_counts_per_pixel_per_second",
)
UNITLESS = {"amplitude_contrast", "fit_score", "global_alignment_quality", "neighbour_correlation"}


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    """A writable copy of schemas/ (with history) for evolution experiments."""
    target = tmp_path / "schemas"
    shutil.copytree(schemas_directory(), target)
    return target


def _edit(directory: Path, record: str, change: Any) -> None:
    path = directory / f"tiltstream.events.{record}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def test_one_file_per_design_record_and_shared_records() -> None:
    names = {entry.short_name for entry in default_registry()}
    assert set(EVENT_RECORDS) == DESIGN_RECORDS
    assert names >= DESIGN_RECORDS
    assert {"EventMetadata", "DataPath", "Producer"} <= names
    for record in DESIGN_RECORDS:
        fields = default_registry().current(record).schema["fields"]
        assert fields[0]["name"] == "metadata"
        assert fields[0]["type"]["name"] == "tiltstream.events.EventMetadata"


def test_metadata_carries_design_fields() -> None:
    fields = {f["name"] for f in default_registry().current("EventMetadata").schema["fields"]}
    expected = {"event_id", "occurred_at", "producer", "microscope", "session_id"}
    assert expected | {"tilt_series_id", "causation_id", "attempt"} <= fields


def _walk_fields(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for fld in schema.get("fields", []):
        out.append((f"{prefix}{fld['name']}", fld))
        types = fld["type"] if isinstance(fld["type"], list) else [fld["type"]]
        for t in types:
            if isinstance(t, dict) and t.get("type") == "record":
                out += _walk_fields(t, f"{prefix}{fld['name']}.")
            if isinstance(t, dict) and t.get("type") == "array" and isinstance(t["items"], dict):
                out += _walk_fields(t["items"], f"{prefix}{fld['name']}[].")
    return out


@pytest.mark.parametrize("record", sorted(DESIGN_RECORDS))
def test_every_field_documented_and_floats_carry_units(record: str) -> None:
    schema = default_registry().current(record).schema
    for path, fld in _walk_fields(schema):
        assert fld.get("doc"), f"{record}.{path} has no doc"
        types = fld["type"] if isinstance(fld["type"], list) else [fld["type"]]
        if any(t in ("double", "float") for t in types):
            name = fld["name"]
            assert name in UNITLESS or name.endswith(UNIT_SUFFIXES), f"{record}.{path}: no unit in the name"


def test_fingerprint_matches_fastavro_rabin() -> None:
    for entry in default_registry():
        ours = struct.pack("<Q", entry.fingerprint).hex()
        assert ours == fingerprint(to_parsing_canonical_form(entry.schema), "CRC-64-AVRO")


def test_repository_history_passes_the_gate() -> None:
    report = check_history(default_registry())
    assert report.ok, report.lines()
    for record in EVENT_RECORDS:
        assert default_registry().history(record), f"{record} has no frozen version"


def test_gate_rejects_field_added_without_default(schema_copy: Path) -> None:
    _edit(
        schema_copy,
        "MovieAcquired",
        lambda s: s["fields"].append({"name": "gain", "type": "double", "doc": "x"}),
    )
    report = check_history(SchemaRegistry(schema_copy))
    assert not report.ok
    problems = report.incompatible["tiltstream.events.MovieAcquired"]
    assert any("backward" in p and "gain" in p for p in problems)
    with pytest.raises(ValueError, match="incompatible"):
        freeze_history(SchemaRegistry(schema_copy))
    result = CliRunner().invoke(create_app(), ["schemas", "check", "--dir", str(schema_copy)])
    assert result.exit_code == 1


def test_gate_rejects_removed_field_and_changed_type(schema_copy: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        s["fields"] = [f for f in s["fields"] if f["name"] != "fit_score"]
        for f in s["fields"]:
            if f["name"] == "box_size_pixels":
                f["type"] = "string"

    _edit(schema_copy, "CtfEstimated", change)
    lines = check_history(SchemaRegistry(schema_copy)).lines()
    assert any("forward" in line and "fit_score" in line for line in lines)
    assert any("box_size_pixels" in line for line in lines)


def test_gate_rejects_undocumented_field(schema_copy: Path) -> None:
    _edit(
        schema_copy,
        "TomogramDenoised",
        lambda s: s["fields"].append({"name": "note", "type": ["null", "string"], "default": None}),
    )
    report = check_history(SchemaRegistry(schema_copy))
    assert "tiltstream.events.TomogramDenoised.note" in report.undocumented


def test_compatible_change_is_frozen_as_next_version(schema_copy: Path) -> None:
    _edit(
        schema_copy,
        "TomogramDenoised",
        lambda s: s["fields"].append(
            {"name": "note", "type": ["null", "string"], "default": None, "doc": "Free text."}
        ),
    )
    registry = SchemaRegistry(schema_copy)
    report = check_history(registry)
    assert report.unfrozen == ["tiltstream.events.TomogramDenoised"]
    assert not report.incompatible
    written = freeze_history(registry)
    assert [p.relative_to(schema_copy).as_posix() for p in written] == ["history/TomogramDenoised/v2.avsc"]
    assert check_history(SchemaRegistry(schema_copy)).ok
    result = CliRunner().invoke(create_app(), ["schemas", "check", "--dir", str(schema_copy)])
    assert result.exit_code == 0, result.output


def test_type_promotion_is_one_way() -> None:
    old = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}
    new = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    assert read_incompatibilities(new, old) == []  # a long reader reads int data
    assert read_incompatibilities(old, new)  # an int reader cannot read long data
    assert full_incompatibilities(new, old)


def test_union_and_nested_record_resolution() -> None:
    inner = {"type": "record", "name": "I", "fields": [{"name": "a", "type": "int"}]}
    old = {"type": "record", "name": "R", "fields": [{"name": "x", "type": ["null", inner], "default": None}]}
    wider = json.loads(json.dumps(old))
    wider["fields"][0]["type"][1]["fields"].append({"name": "b", "type": "string", "default": ""})
    assert full_incompatibilities(wider, old) == []
    narrower = json.loads(json.dumps(old))
    narrower["fields"][0]["type"] = inner
    assert read_incompatibilities(narrower, old)  # null cannot be read into a bare record
    assert read_incompatibilities(old, narrower) == []
