"""The schema registry of record: every ``.avsc`` in ``schemas/`` and every frozen earlier version.

``schemas/`` holds one named type per file (``tiltstream.events.<Name>.avsc``); a schema refers to
the shared records (``EventMetadata``, ``DataPath`` ...) by name. The registry expands those
references into self-contained schemas, fingerprints them (CRC-64-AVRO of the parsing canonical
form) and keeps every earlier version from ``schemas/history/<Name>/v<N>.avsc`` so that a reader
can resolve any writer schema it meets on a topic by fingerprint.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from tiltstream.streams.crc64 import crc64_avro

__all__ = [
    "EVENT_NAMESPACE",
    "RegisteredSchema",
    "SchemaRegistry",
    "UnknownSchemaError",
    "default_registry",
    "expand_schema",
    "schema_fingerprint",
]

EVENT_NAMESPACE = "tiltstream.events"

Schema = dict[str, Any]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class UnknownSchemaError(LookupError):
    """A record name or fingerprint that the registry does not hold."""


def schema_fingerprint(schema: Schema) -> int:
    """CRC-64-AVRO fingerprint of a self-contained schema's parsing canonical form."""
    canonical: str = to_parsing_canonical_form(schema)
    return crc64_avro(canonical.encode("utf-8"))


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def expand_schema(schema: Schema, named: Mapping[str, Schema]) -> Schema:
    """Inline the named types ``schema`` refers to, each at its first use, as Avro requires.

    Parameters
    ----------
    schema
        A record schema that may name types defined in other files.
    named
        Every named type by full name.

    Returns
    -------
    A deep copy that parses on its own; later references stay as full names.
    """
    defined: set[str] = set()

    def walk(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            full = _full_name(node, namespace)
            if full in defined:
                return full
            if full not in named:
                raise UnknownSchemaError(f"schema refers to unknown type {full!r}")
            return walk(copy.deepcopy(named[full]), namespace)
        if isinstance(node, list):
            return [walk(branch, namespace) for branch in node]
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                ns = node.get("namespace", namespace)
                full = _full_name(node["name"], ns)
                defined.add(full)
                node = dict(node)
                node["name"] = full
                node.pop("namespace", None)
                if kind in ("record", "error"):
                    inner_ns = full.rpartition(".")[0] or None
                    node["fields"] = [{**fld, "type": walk(fld["type"], inner_ns)} for fld in node["fields"]]
                return node
            if kind == "array":
                return {**node, "items": walk(node["items"], namespace)}
            if kind == "map":
                return {**node, "values": walk(node["values"], namespace)}
            if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
                return {**node, "type": walk(kind, namespace)}
            return node
        raise TypeError(f"not an Avro schema node: {node!r}")

    result: Schema = walk(schema, schema.get("namespace"))
    return result


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of one record schema, fully expanded."""

    name: str
    version: int | None  # None for the current schema in schemas/, N for history/<Name>/vN.avsc
    schema: Schema = field(repr=False, compare=False)
    fingerprint: int = 0
    discovered: bool = False  # learned at run time from the schemas topic, not from this package

    @property
    def short_name(self) -> str:
        """The record name without its namespace, e.g. ``MovieAcquired``."""
        return self.name.rpartition(".")[2]


class SchemaRegistry:
    """Current and historical schemas of the event catalogue, by name and by fingerprint.

    Parameters
    ----------
    directory
        A ``schemas/`` folder: ``<namespace>.<Name>.avsc`` files and an optional ``history/``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._named: dict[str, Schema] = {}
        for path in sorted(directory.glob("*.avsc")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            full = _full_name(raw["name"], raw.get("namespace"))
            if path.name != f"{full}.avsc":
                raise ValueError(f"{path.name} defines {full}; the file must be named {full}.avsc")
            self._named[full] = raw
        self._current: dict[str, RegisteredSchema] = {}
        for full, raw in self._named.items():
            expanded = expand_schema(raw, self._named)
            self._current[full] = RegisteredSchema(full, None, expanded, schema_fingerprint(expanded))
        self._history: dict[str, list[RegisteredSchema]] = {}
        history = directory / "history"
        for path in sorted(history.glob("*/v*.avsc")) if history.is_dir() else []:
            raw = json.loads(path.read_text(encoding="utf-8"))
            full = _full_name(raw["name"], raw.get("namespace"))
            version = int(path.stem.removeprefix("v"))
            entry = RegisteredSchema(full, version, raw, schema_fingerprint(raw))
            self._history.setdefault(full, []).append(entry)
        for versions in self._history.values():
            versions.sort(key=lambda entry: entry.version or 0)
        self._by_fingerprint: dict[int, RegisteredSchema] = {}
        for versions in self._history.values():
            for entry in versions:  # later versions win when only docs or defaults changed
                self._by_fingerprint[entry.fingerprint] = entry
        for entry in self._current.values():
            self._by_fingerprint[entry.fingerprint] = entry

    def names(self) -> list[str]:
        """Full names of every current named type, sorted."""
        return sorted(self._current)

    def resolve_name(self, name: str) -> str:
        """Full name for ``name``, which may omit the ``tiltstream.events`` namespace."""
        full = _full_name(name, EVENT_NAMESPACE)
        if full not in self._current:
            raise UnknownSchemaError(f"no schema named {name!r} in {self.directory}")
        return full

    def current(self, name: str) -> RegisteredSchema:
        """The current (reader) version of a record."""
        return self._current[self.resolve_name(name)]

    def history(self, name: str) -> list[RegisteredSchema]:
        """Frozen earlier versions of a record, oldest first (empty when never frozen)."""
        return list(self._history.get(self.resolve_name(name), []))

    def by_fingerprint(self, fingerprint: int) -> RegisteredSchema:
        """The schema a writer used, from the fingerprint in a single-object encoded message."""
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise UnknownSchemaError(f"no schema with fingerprint {fingerprint:016x}") from None

    def known(self) -> list[RegisteredSchema]:
        """Every schema a reader can resolve by fingerprint: current, frozen and discovered."""
        return list(self._by_fingerprint.values())

    def discovered(self, schema: Schema) -> RegisteredSchema:
        """An entry for a writer schema learned at run time (e.g. from the schemas topic).

        A service deployed before a schema change learns the newer writer's schema this way and reads
        its events into its own, older, version of the record. The registry itself is not changed:
        the caller (a serde) keeps what it learned.

        Raises
        ------
        fastavro.schema.SchemaParseException
            When ``schema`` is not a valid self-contained Avro schema.
        """
        fingerprint = schema_fingerprint(schema)
        existing = self._by_fingerprint.get(fingerprint)
        if existing is not None:
            return existing
        parse_schema(schema, _write_hint=False)  # refuse what would fail at the first decode
        name = _full_name(schema["name"], schema.get("namespace"))
        return RegisteredSchema(name, None, schema, fingerprint, discovered=True)

    def __iter__(self) -> Iterator[RegisteredSchema]:
        return iter(self._current[name] for name in self.names())


def schemas_directory() -> Path:
    """The ``schemas/`` folder installed with the package (or the source tree's, in development)."""
    return Path(str(resources.files("tiltstream") / "schemas"))


@cache
def default_registry() -> SchemaRegistry:
    """The registry of the installed package's ``schemas/``, loaded once per process."""
    return SchemaRegistry(schemas_directory())
