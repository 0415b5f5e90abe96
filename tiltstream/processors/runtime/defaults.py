"""Filling optional fields a processor did not set, so outputs survive additive schema changes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tiltstream.streams.schema_registry import SchemaRegistry, default_registry

__all__ = ["with_defaults"]


def with_defaults(
    record: str, value: Mapping[str, Any], registry: SchemaRegistry | None = None
) -> dict[str, Any]:
    """``value`` plus the schema default of every top-level field of ``record`` it lacks.

    A field added later to the schema (always with a default) then needs no change in the code
    that builds the event.
    """
    schema = (registry or default_registry()).current(record).schema
    out = dict(value)
    for field in schema["fields"]:
        if field["name"] not in out and "default" in field:
            out[field["name"]] = copy.deepcopy(field["default"])
    return out
