"""Schema evolution gate: every event schema stays fully compatible with each earlier version.

``schemas/history/<Name>/v<N>.avsc`` keeps a frozen, self-contained copy of every released version of
each event record. :func:`check_history` reports any change to ``schemas/`` that an older reader
could not read, or that could not read older data, and any change not yet frozen;
:func:`freeze_history` records the current schemas as new versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tiltstream.streams.catalogue import EVENT_RECORDS
from tiltstream.streams.compat import full_incompatibilities
from tiltstream.streams.schema_registry import SchemaRegistry

__all__ = ["HistoryReport", "check_history", "freeze_history", "lint_docs"]


@dataclass
class HistoryReport:
    """Outcome of :func:`check_history`: problems per record, empty when the gate passes."""

    incompatible: dict[str, list[str]] = field(default_factory=dict)
    unfrozen: list[str] = field(default_factory=list)
    undocumented: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not (self.incompatible or self.unfrozen or self.undocumented)

    def lines(self) -> list[str]:
        """Human-readable problems, one per line."""
        out = [f"{name}: {p}" for name, problems in self.incompatible.items() for p in problems]
        out += [f"{name}: changed but not frozen (run `tiltstream schemas freeze`)" for name in self.unfrozen]
        out += [f"{where}: no doc" for where in self.undocumented]
        return out


def _canonical_json(schema: object) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def lint_docs(registry: SchemaRegistry) -> list[str]:
    """Named types and fields that lack a ``doc`` string."""
    missing = []
    for entry in registry:
        raw = json.loads((registry.directory / f"{entry.name}.avsc").read_text(encoding="utf-8"))
        if not raw.get("doc"):
            missing.append(entry.name)
        missing += [f"{entry.name}.{f['name']}" for f in raw.get("fields", []) if not f.get("doc")]
    return missing


def check_history(registry: SchemaRegistry, records: tuple[str, ...] = EVENT_RECORDS) -> HistoryReport:
    """Check each event record's current schema against every frozen version.

    Parameters
    ----------
    registry
        Current schemas and their history.
    records
        Which records are released events (the topic catalogue's).
    """
    report = HistoryReport(undocumented=lint_docs(registry))
    for record in records:
        current = registry.current(record)
        versions = registry.history(record)
        problems = []
        for old in versions:
            problems += [
                f"vs v{old.version}: {p}" for p in full_incompatibilities(current.schema, old.schema)
            ]
        if problems:
            report.incompatible[current.name] = problems
        if not versions or _canonical_json(versions[-1].schema) != _canonical_json(current.schema):
            report.unfrozen.append(current.name)
    return report


def freeze_history(registry: SchemaRegistry, records: tuple[str, ...] = EVENT_RECORDS) -> list[Path]:
    """Write the current schema of each changed record as its next version; return the new files.

    Refuses (``ValueError``) when the gate finds an incompatible change: a released version is
    never superseded by a schema that cannot read its data.
    """
    report = check_history(registry, records)
    if report.incompatible:
        raise ValueError("incompatible schema changes:\n" + "\n".join(report.lines()))
    written = []
    for name in report.unfrozen:
        versions = registry.history(name)
        number = (versions[-1].version or 0) + 1 if versions else 1
        path = registry.directory / "history" / registry.current(name).short_name / f"v{number}.avsc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(registry.current(name).schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
