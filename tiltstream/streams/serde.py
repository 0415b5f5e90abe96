"""Avro single-object encoding of tiltstream events.

A message value is ``C3 01`` (the marker), the writer schema's 8-byte little-endian CRC-64-AVRO
fingerprint, then the Avro binary body. A reader looks the writer schema up by fingerprint in the
:class:`~tiltstream.streams.schema_registry.SchemaRegistry` and resolves the body into its own
(current) version of the record, so producers and consumers can be upgraded independently.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from tiltstream.streams.errors import UndecodableEventError
from tiltstream.streams.schema_registry import (
    RegisteredSchema,
    SchemaRegistry,
    UnknownSchemaError,
    default_registry,
)

__all__ = ["MAGIC", "AvroSerde", "DecodedEvent"]

#: The single-object encoding marker of the Avro specification.
MAGIC = b"\xc3\x01"
_HEADER = struct.Struct("<2sQ")


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

    def _parsed_schema(self, entry: RegisteredSchema) -> Any:
        key = (entry.fingerprint, id(entry.schema))
        if key not in self._parsed:
            self._parsed[key] = parse_schema(entry.schema, _write_hint=False)
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
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"value does not match schema {record}: {exc}") from exc
        return buffer.getvalue()

    def decode(
        self,
        data: bytes | None,
        *,
        reader: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DecodedEvent:
        """Decode one single-object encoded event.

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

        def fail(reason: str, cause: BaseException | None = None) -> UndecodableEventError:
            error = UndecodableEventError(reason, topic=topic, partition=partition, offset=offset)
            error.__cause__ = cause
            return error

        if data is None:
            raise fail("message has no value (tombstone)")
        if len(data) < _HEADER.size or data[:2] != MAGIC:
            raise fail(f"not Avro single-object encoding (starts {data[:2].hex() or 'empty'})")
        _, fingerprint = _HEADER.unpack_from(data)
        try:
            writer = self.writer_schema(fingerprint)
            target = self.registry.current(reader) if reader else self.registry.current(writer.name)
        except UnknownSchemaError as exc:
            raise fail(str(exc), exc) from exc
        if reader and writer.name != target.name:
            raise fail(f"writer record {writer.name} is not the expected {target.name}")
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        try:
            value = schemaless_reader(
                body, self._parsed_schema(writer), self._parsed_schema(target), return_record_name=False
            )
        except Exception as exc:  # fastavro raises many types for corrupt input
            raise fail(f"corrupt {writer.short_name} body: {type(exc).__name__}: {exc}", exc) from exc
        if body.tell() != len(data):
            raise fail(f"{len(data) - body.tell()} trailing bytes after the {writer.short_name} body")
        if not isinstance(value, dict):
            raise fail(f"decoded a {type(value).__name__}, not a record")
        return DecodedEvent(target.name, value, fingerprint)
