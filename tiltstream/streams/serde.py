"""Avro single-object encoding of tiltstream events.

A message value is ``C3 01`` (the marker), the writer schema's 8-byte little-endian CRC-64-AVRO
fingerprint, then the Avro binary body. A reader looks the writer schema up by fingerprint in the
:class:`~tiltstream.streams.schema_registry.SchemaRegistry` and resolves the body into its own
(current) version of the record, so producers and consumers can be upgraded independently.

Two forms of the same events: :meth:`AvroSerde.encode`/:meth:`AvroSerde.decode` take and give
dicts (fastavro's form); :meth:`AvroSerde.encode_typed`/:meth:`AvroSerde.decode_typed` take and
give the frozen records of :mod:`tiltstream.streams.events`. The typed path writes and reads the
current schema with the module's generated codecs (no schema walk per message) and falls back to
fastavro's schema resolution, then ``from_dict``, for a body written with another version.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from tiltstream.streams.avro_binary import RecordCodec
from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.events import CODECS
from tiltstream.streams.schema_registry import (
    RegisteredSchema,
    SchemaRegistry,
    UnknownSchemaError,
    default_registry,
)

__all__ = ["MAGIC", "AvroSerde", "DecodedEvent", "StaleEventsModuleError"]

T = TypeVar("T")

#: The single-object encoding marker of the Avro specification.
MAGIC = b"\xc3\x01"
_HEADER = struct.Struct("<2sQ")


#: What goes wrong while encoding a value: a missing field, a wrong type, a number out of range.
_ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)


class StaleEventsModuleError(RuntimeError):
    """The generated :mod:`tiltstream.streams.events` was made from another version of a schema."""


@dataclass(frozen=True)
class _Plan:
    """How to read bodies of one writer fingerprint: resolved once, used for every message."""

    record: str  # the reader's record name
    writer: Any  # parsed writer schema
    reader: Any  # parsed reader schema, None when the writer's is the reader's
    typed: Callable[[bytes, int], tuple[Any, int]] | None = None  # generated reader of the body


@dataclass(frozen=True)
class DecodedEvent:
    """An event read from bytes: its record name, value (in the reader's schema) and writer version."""

    record: str
    value: dict[str, Any]
    writer_fingerprint: int

    @property
    def short_record(self) -> str:
        """The record name without namespace, e.g. ``MovieAcquired``."""
        return self.record.rpartition(".")[2]


class AvroSerde:
    """Encode and decode events of the catalogue.

    Parameters
    ----------
    registry
        Where schemas come from; the installed package's ``schemas/`` by default.
    resolver
        Called with a fingerprint the registry does not hold; returns the writer schema or None
        (see :class:`~tiltstream.streams.schema_topic.SchemaTopicResolver`).
    """

    def __init__(
        self,
        registry: SchemaRegistry | None = None,
        resolver: Callable[[int], dict[str, Any] | None] | None = None,
    ) -> None:
        self.registry = registry or default_registry()
        self.resolver = resolver
        self._discovered: dict[int, RegisteredSchema] = {}
        self._parsed: dict[tuple[int, int], Any] = {}
        self._writers: dict[str, tuple[bytes, Any]] = {}
        self._typed_headers: dict[type[Any], tuple[bytes, RecordCodec[Any]]] = {}
        self._plans: dict[tuple[int, str | type[Any] | None], _Plan] = {}

    def _parsed_schema(self, entry: RegisteredSchema) -> Any:
        key = (entry.fingerprint, id(entry.schema))
        if key not in self._parsed:
            # parsed once with fastavro's marker, so that its reader and writer do not parse it again
            self._parsed[key] = parse_schema(entry.schema)
        return self._parsed[key]

    def writer_schema(self, fingerprint: int) -> RegisteredSchema:
        """The writer schema for ``fingerprint``: from the registry, or learned through the resolver.

        Raises
        ------
        UnknownSchemaError
            When neither knows it.
        """
        try:
            return self.registry.by_fingerprint(fingerprint)
        except UnknownSchemaError:
            if fingerprint in self._discovered:
                return self._discovered[fingerprint]
            learned = self.resolver(fingerprint) if self.resolver else None
            if learned is None:
                raise
            entry = self.registry.discovered(learned)
            self._discovered[fingerprint] = entry
            return entry

    def encode(self, record: str, value: Mapping[str, Any]) -> bytes:
        """Encode ``value`` as the current version of ``record`` (e.g. ``"MovieAcquired"``).

        Raises
        ------
        ValueError
            When ``value`` does not match the schema (missing field, wrong type).
        """
        writer = self._writers.get(record)
        if writer is None:
            entry = self.registry.current(record)
            writer = (_HEADER.pack(MAGIC, entry.fingerprint), self._parsed_schema(entry))
            self._writers[record] = writer
        header, parsed = writer
        buffer = io.BytesIO()
        buffer.write(header)
        try:
            # strict: an unknown or missing field is an error, except a missing field that has a
            # default (code written before a compatible schema change keeps working)
            schemaless_writer(buffer, parsed, value, strict_allow_default=True)
        except _ENCODE_ERRORS as exc:
            raise ValueError(f"value does not match schema {record}: {exc}") from exc
        return buffer.getvalue()

    def _typed_writer(self, kind: type[Any]) -> tuple[bytes, RecordCodec[Any]]:
        codec = CODECS.get(kind)
        if codec is None:
            raise TypeError(f"{kind.__name__} is not a record of tiltstream.streams.events")
        current = self.registry.current(codec.record)
        if current.fingerprint != codec.fingerprint:
            raise StaleEventsModuleError(
                f"tiltstream.streams.events was generated from another {current.short_name} schema "
                f"({codec.fingerprint:016x}, the registry has {current.fingerprint:016x}): "
                "regenerate it with python -m tiltstream.schemas.codegen"
            )
        writer = (_HEADER.pack(MAGIC, codec.fingerprint), codec)
        self._typed_headers[kind] = writer
        return writer

    def encode_typed(self, event: object) -> bytes:
        """Encode a record of :mod:`tiltstream.streams.events` as its current schema.

        Raises
        ------
        TypeError
            When ``event`` is not one of the generated records.
        ValueError
            When a field holds a value its schema cannot carry (wrong type, out of range, naive time).
        StaleEventsModuleError
            When the generated module does not match the registry's current schema.
        """
        writer = self._typed_headers.get(type(event)) or self._typed_writer(type(event))
        header, codec = writer
        out = bytearray(header)
        try:
            codec.write(out, event)
        except _ENCODE_ERRORS as exc:
            raise ValueError(f"value does not match schema {codec.record}: {exc}") from exc
        return bytes(out)

    def _plan(self, fingerprint: int, reader: str | type[Any] | None) -> _Plan:
        """Resolve the writer and reader schemas (raises UnknownSchemaError or LookupError)."""
        plan = self._plans.get((fingerprint, reader))
        if plan is not None:
            return plan
        writer = self.writer_schema(fingerprint)
        codec = CODECS[reader] if isinstance(reader, type) else None
        name = codec.record if codec is not None else reader if isinstance(reader, str) else writer.name
        target = self.registry.current(name)
        if writer.name != target.name:
            raise LookupError(f"writer record {writer.name} is not the expected {target.name}")
        same = writer.fingerprint == target.fingerprint
        typed = codec.read if codec is not None and same and codec.fingerprint == fingerprint else None
        parsed_reader = None if same else self._parsed_schema(target)
        plan = _Plan(target.name, self._parsed_schema(writer), parsed_reader, typed)
        self._plans[(fingerprint, reader)] = plan
        return plan

    def _body(
        self, data: bytes | None, reader: str | type[Any] | None, where: dict[str, Any]
    ) -> tuple[_Plan, int]:
        """Check the single-object header and resolve the schemas: the plan and the fingerprint."""
        if data is None:
            raise UndecodableEventError("message has no value (tombstone)", **where)
        if len(data) < _HEADER.size or data[:2] != MAGIC:
            reason = f"not Avro single-object encoding (starts {data[:2].hex() or 'empty'})"
            raise UndecodableEventError(reason, **where)
        _, fingerprint = _HEADER.unpack_from(data)
        try:
            return self._plan(fingerprint, reader), fingerprint
        except LookupError as exc:  # UnknownSchemaError is one
            raise UndecodableEventError(str(exc), **where) from exc

    def _read_dict(self, data: bytes, plan: _Plan, where: dict[str, Any]) -> dict[str, Any]:
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        short = plan.record.rpartition(".")[2]
        try:
            value = schemaless_reader(body, plan.writer, plan.reader, return_record_name=False)
        except Exception as exc:  # fastavro raises many types for corrupt input
            reason = f"corrupt {short} body: {type(exc).__name__}: {exc}"
            raise UndecodableEventError(reason, **where) from exc
        if body.tell() != len(data):
            raise UndecodableEventError(
                f"{len(data) - body.tell()} trailing bytes after the {short} body", **where
            )
        if not isinstance(value, dict):
            raise UndecodableEventError(f"decoded a {type(value).__name__}, not a record", **where)
        return value

    def decode(
        self,
        data: bytes | None,
        *,
        reader: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DecodedEvent:
        """Decode one single-object encoded event into a dict.

        Parameters
        ----------
        data
            The message value.
        reader
            Record to read into (its current version); the writer's own schema when omitted.
        topic, partition, offset
            Where the bytes came from, named in the error when they cannot be decoded.

        Raises
        ------
        UndecodableEventError
            For a missing marker, an unknown fingerprint, a schema the reader cannot resolve, or a
            truncated or corrupt body.
        """
        where: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
        plan, fingerprint = self._body(data, reader, where)
        assert data is not None
        return DecodedEvent(plan.record, self._read_dict(data, plan, where), fingerprint)

    def decode_typed(
        self,
        data: bytes | None,
        reader: type[T],
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> T:
        """Decode one single-object encoded event into a record of :mod:`tiltstream.streams.events`.

        Parameters
        ----------
        data
            The message value.
        reader
            The record class to read into, e.g. ``MovieAcquired``; a body written with an earlier or
            later version of its schema is resolved into the current one.
        topic, partition, offset
            Where the bytes came from, named in the error when they cannot be decoded.

        Raises
        ------
        UndecodableEventError
            As :meth:`decode`, and when the body was written for another record.
        TypeError
            When ``reader`` is not one of the generated records.
        """
        if reader not in CODECS:
            raise TypeError(f"{reader.__name__} is not a record of tiltstream.streams.events")
        where: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
        plan, _ = self._body(data, reader, where)
        assert data is not None
        if plan.typed is None:  # another version of the schema: fastavro resolves it
            return cast(T, cast(Any, reader).from_dict(self._read_dict(data, plan, where)))
        try:
            value, end = plan.typed(data, _HEADER.size)
        except Exception as exc:  # IndexError, ValueError, struct.error, UnicodeDecodeError ...
            reason = f"corrupt {reader.__name__} body: {type(exc).__name__}: {exc}"
            raise UndecodableEventError(reason, **where) from exc
        if end != len(data):
            raise UndecodableEventError(
                f"{len(data) - end} trailing bytes after the {reader.__name__} body", **where
            )
        return cast(T, value)
