"""Avro schema resolution rules, used as the compatibility gate for schema changes.

A reader schema can read data written with a writer schema when the Avro specification's schema
resolution succeeds for every value the writer can produce. Schema evolution in tiltstream must be
*full*: the new version reads the old data (backward) and the old version reads new data (forward),
so producers and consumers upgrade in any order and old topics replay forever.
"""

from __future__ import annotations

from typing import Any

__all__ = ["full_incompatibilities", "read_incompatibilities"]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def _collect(node: Any, named: dict[str, dict[str, Any]], namespace: str | None = None) -> None:
    if isinstance(node, list):
        for branch in node:
            _collect(branch, named, namespace)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            name = node["name"]
            ns = node.get("namespace", namespace)
            full = name if "." in name or not ns else f"{ns}.{name}"
            named[full] = node
            for fld in node.get("fields", []):
                _collect(fld["type"], named, full.rpartition(".")[0] or None)
        elif kind == "array":
            _collect(node["items"], named, namespace)
        elif kind == "map":
            _collect(node["values"], named, namespace)
        elif isinstance(kind, (dict, list)):
            _collect(kind, named, namespace)


class _Checker:
    def __init__(self, reader: dict[str, Any], writer: dict[str, Any]) -> None:
        self.reader_named: dict[str, dict[str, Any]] = {}
        self.writer_named: dict[str, dict[str, Any]] = {}
        _collect(reader, self.reader_named)
        _collect(writer, self.writer_named)
        self.seen: set[tuple[int, int]] = set()
        self.problems: list[str] = []

    @staticmethod
    def _resolve(node: Any, named: dict[str, dict[str, Any]]) -> Any:
        while True:
            if isinstance(node, str) and node not in _PRIMITIVES:
                match = named.get(node) or next(
                    (v for k, v in named.items() if k.rpartition(".")[2] == node), None
                )
                if match is None:
                    raise ValueError(f"unknown named type {node!r}")
                node = match
            elif isinstance(node, dict) and node.get("type") not in ("record", "error", "enum", "fixed"):
                kind = node["type"]
                if kind in ("array", "map"):
                    return node
                node = kind
            else:
                return node

    @staticmethod
    def _kind(node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return "union"
        return str(node["type"])

    @staticmethod
    def _logical(node: Any) -> str | None:
        return node.get("logicalType") if isinstance(node, dict) else None

    def check(self, reader: Any, writer: Any, path: str) -> bool:
        """Record problems for reading ``writer`` data with ``reader``; True when it resolves."""
        r_logical, w_logical = self._logical(reader), self._logical(writer)
        original_writer = writer
        reader = self._resolve(reader, self.reader_named)
        writer = self._resolve(writer, self.writer_named)
        key = (id(reader), id(writer))
        if key in self.seen:
            return True
        r_kind, w_kind = self._kind(reader), self._kind(writer)
        if w_kind == "union":
            return all([self.check(reader, branch, f"{path}<{self._kind(branch)}>") for branch in writer])
        if r_kind == "union":
            for branch in reader:
                trial = _Checker.__new__(_Checker)
                trial.reader_named, trial.writer_named = self.reader_named, self.writer_named
                trial.seen, trial.problems = set(self.seen), []
                if trial.check(branch, original_writer, path):
                    return True
            return self._fail(path, f"no branch of the reader's union reads the writer's {w_kind}")
        if r_logical != w_logical and r_kind in _PRIMITIVES and w_kind in _PRIMITIVES:
            return self._fail(path, f"logical type changed from {w_logical} to {r_logical}")
        if r_kind in _PRIMITIVES or w_kind in _PRIMITIVES:
            if r_kind == w_kind or r_kind in _PROMOTIONS.get(w_kind, set()):
                return True
            return self._fail(path, f"writer's {w_kind} cannot be read as {r_kind}")
        if r_kind != w_kind:
            return self._fail(path, f"writer's {w_kind} cannot be read as {r_kind}")
        if r_kind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if r_kind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        short = writer["name"].rpartition(".")[2]
        aliases = {a.rpartition(".")[2] for a in reader.get("aliases", [])}
        if reader["name"].rpartition(".")[2] != short and short not in aliases:
            return self._fail(path, f"{r_kind} name {reader['name']} does not match {writer['name']}")
        self.seen.add(key)
        if r_kind == "fixed":
            return reader["size"] == writer["size"] or self._fail(path, "fixed size changed")
        if r_kind == "enum":
            missing = set(writer["symbols"]) - set(reader["symbols"])
            if missing and "default" not in reader:
                return self._fail(path, f"reader enum lacks symbols {sorted(missing)} and has no default")
            return True
        ok = True
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for fld in reader["fields"]:
            names = [fld["name"], *fld.get("aliases", [])]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            where = f"{path}.{fld['name']}"
            if match is None:
                if "default" not in fld:
                    ok = self._fail(where, "field added without a default")
                continue
            ok = self.check(fld["type"], match["type"], where) and ok
        return ok

    def _fail(self, path: str, message: str) -> bool:
        self.problems.append(f"{path or '<root>'}: {message}")
        return False


def read_incompatibilities(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader``; empty when it can.

    Parameters
    ----------
    reader, writer
        Self-contained Avro schemas (named types defined inline).
    """
    checker = _Checker(reader, writer)
    checker.check(reader, writer, reader.get("name", ""))
    return checker.problems


def full_incompatibilities(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Problems in both directions: ``new`` reading ``old`` data and ``old`` reading ``new`` data."""
    backward = [f"backward: {p}" for p in read_incompatibilities(new, old)]
    forward = [f"forward: {p}" for p in read_incompatibilities(old, new)]
    return backward + forward
