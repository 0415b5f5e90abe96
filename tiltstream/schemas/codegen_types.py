"""The generator's model of the schemas: named types and the type expressions of their fields.

Only what the event catalogue needs and what the generated codecs implement is accepted: the
primitive types, ``timestamp-millis`` longs, records, enums, arrays, maps and two-branch
unions with ``null``. Anything else raises :class:`UnsupportedSchemaError` naming where it is, so
that a schema change either generates working code or fails loudly.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PRIMITIVES",
    "AvroType",
    "EnumDef",
    "FieldDef",
    "NamedDef",
    "RecordDef",
    "UnsupportedSchemaError",
    "collect_named",
    "python_annotation",
    "short_name",
    "sorted_by_dependency",
]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_PY_PRIMITIVES = {
    "null": "None",
    "boolean": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
    "string": "str",
}


class UnsupportedSchemaError(ValueError):
    """A schema construct the generator does not implement (the message says where)."""


@dataclass(frozen=True)
class AvroType:
    """A field's type: ``kind`` is a primitive name, ``timestamp-millis``, ``named`` (a record),
    ``enum``, ``array``, ``map`` or ``optional``; ``name`` is set for records and enums, ``inner``
    for the other composites.
    """

    kind: str
    name: str = ""
    inner: AvroType | None = None
    null_index: int = 0  # for optional: the union position of "null" (0 or 1)

    @property
    def item(self) -> AvroType:
        """The element, value or non-null branch type of a composite."""
        assert self.inner is not None, self
        return self.inner


@dataclass(frozen=True)
class FieldDef:
    """A record field: name, type, doc and (when present) its default as JSON."""

    name: str
    type: AvroType
    doc: str
    has_default: bool
    default: Any = None


@dataclass(frozen=True)
class RecordDef:
    """A record: full name, doc and fields in schema order."""

    full_name: str
    doc: str
    fields: tuple[FieldDef, ...]


@dataclass(frozen=True)
class EnumDef:
    """An enum: full name, doc and symbols in schema order."""

    full_name: str
    doc: str
    symbols: tuple[str, ...]


NamedDef = RecordDef | EnumDef


def short_name(full_name: str) -> str:
    """The Python class name of a named type: its name without namespace."""
    return full_name.rpartition(".")[2]


def _type_of(node: Any, named: dict[str, NamedDef], where: str) -> AvroType:
    if isinstance(node, str):
        if node == "null":
            raise UnsupportedSchemaError(f"{where}: null is supported only as a branch of a union")
        if node in PRIMITIVES:
            return AvroType(node)
        if node not in named:
            raise UnsupportedSchemaError(f"{where}: unknown type {node!r}")
        return AvroType("enum" if isinstance(named[node], EnumDef) else "named", name=node)
    if isinstance(node, list):
        branches = [b for b in node if b != "null"]
        if len(node) != 2 or len(branches) != 1:
            raise UnsupportedSchemaError(f"{where}: only two-branch unions with null are supported")
        return AvroType("optional", inner=_type_of(branches[0], named, where), null_index=node.index("null"))
    if not isinstance(node, dict):
        raise UnsupportedSchemaError(f"{where}: not an Avro type: {node!r}")
    kind = node.get("type")
    logical = node.get("logicalType")
    if logical is not None:
        if logical == "timestamp-millis" and kind == "long":
            return AvroType("timestamp-millis")
        raise UnsupportedSchemaError(f"{where}: logical type {logical!r} on {kind!r} is not supported")
    if kind == "fixed":
        raise UnsupportedSchemaError(f"{where}: fixed types are not supported")
    if kind in ("record", "error", "enum"):
        _define(node, named, where)
        return _type_of(str(node["name"]), named, where)
    if kind == "array":
        return AvroType("array", inner=_type_of(node["items"], named, where))
    if kind == "map":
        return AvroType("map", inner=_type_of(node["values"], named, where))
    return _type_of(kind, named, where)


def _field(raw: Mapping[str, Any], named: dict[str, NamedDef], record: str) -> FieldDef:
    name = str(raw["name"])
    if keyword.iskeyword(name) or not name.isidentifier():
        raise UnsupportedSchemaError(f"{record}.{name}: not usable as a Python attribute name")
    kind = _type_of(raw["type"], named, f"{record}.{name}")
    return FieldDef(name, kind, str(raw.get("doc", "")), "default" in raw, raw.get("default"))


def _define(node: Mapping[str, Any], named: dict[str, NamedDef], where: str) -> None:
    full = str(node["name"])  # expand_schema gives every named type its full name
    if full in named:
        return
    kind, doc = node["type"], str(node.get("doc", ""))
    if kind == "enum":
        named[full] = EnumDef(full, doc, tuple(node["symbols"]))
    else:
        named[full] = RecordDef(full, doc, ())  # placeholder while its fields refer back to it
        fields = tuple(_field(raw, named, full) for raw in node["fields"])
        named[full] = RecordDef(full, doc, fields)


def collect_named(schemas: Iterable[Mapping[str, Any]]) -> dict[str, NamedDef]:
    """Every named type defined in ``schemas`` (self-contained, expanded record schemas) by full name.

    Raises
    ------
    UnsupportedSchemaError
        For a construct the generated code cannot handle, or two types with the same short name.
    """
    named: dict[str, NamedDef] = {}
    for schema in schemas:
        _define(schema, named, str(schema.get("name")))
    seen: dict[str, str] = {}
    for full in named:
        other = seen.setdefault(short_name(full), full)
        if other != full:
            clash = f"{other} and {full} would both be the Python class {short_name(full)}"
            raise UnsupportedSchemaError(clash)
    return named


def _dependencies(kind: AvroType) -> list[str]:
    if kind.kind in ("named", "enum"):
        return [kind.name]
    return _dependencies(kind.inner) if kind.inner is not None else []


def sorted_by_dependency(named: Mapping[str, NamedDef]) -> list[NamedDef]:
    """Named types ordered so that each comes after the types its fields use (ties by name)."""
    done: dict[str, NamedDef] = {}
    visiting: set[str] = set()

    def visit(full: str) -> None:
        if full in done or full in visiting:  # visiting: a recursive record refers to itself
            return
        visiting.add(full)
        definition = named[full]
        if isinstance(definition, RecordDef):
            for fld in definition.fields:
                for dependency in _dependencies(fld.type):
                    visit(dependency)
        done[full] = definition

    for full in sorted(named, key=short_name):
        visit(full)
    return list(done.values())


def python_annotation(kind: AvroType) -> str:
    """The Python type of a field, as source text."""
    if kind.kind in _PY_PRIMITIVES:
        return _PY_PRIMITIVES[kind.kind]
    if kind.kind == "timestamp-millis":
        return "datetime"
    if kind.kind in ("named", "enum"):
        return short_name(kind.name)
    if kind.kind == "array":
        return f"tuple[{python_annotation(kind.item)}, ...]"
    if kind.kind == "map":
        return f"Mapping[str, {python_annotation(kind.item)}]"
    return f"{python_annotation(kind.item)} | None"
