"""Values checked at the edges: where events are made and where they are consumed.

Non-finite numbers, physically absurd values, NUL bytes and non-POSIX path strings are refused with
the field and the reason (:class:`~tiltstream.streams.errors.InvalidEventError`).

The checks are driven by the schemas: each record's schema is compiled once into nested checks —
every string is searched for NUL, every ``DataPath`` must be a plain relative POSIX path, and every
number gets the range its name's unit implies (:mod:`~tiltstream.streams.validation_rules`). The
dotted path of a bad field (``tilts[3].tilt_angle_degrees``) is built only when one is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.schema_registry import EVENT_NAMESPACE, SchemaRegistry, default_registry
from tiltstream.streams.validation_rules import Range, range_for

__all__ = ["InvalidEventError", "check_event", "escape_nul", "path_problem"]

#: A check of one value: returns when it is acceptable, raises :class:`_Refused` otherwise.
Check = Callable[[Any], None]

_DATA_PATH = f"{EVENT_NAMESPACE}.DataPath"
_DRIVE = re.compile(r"[A-Za-z]:")


class _Refused(Exception):
    """A refused value; the enclosing checks prepend their field names on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = []

    def dotted(self) -> str:
        return ".".join(reversed(self.segments)).replace(".[", "[")


def escape_nul(text: str) -> str:
    """``text`` with each NUL written as ``\\x00``, for messages that quote bad input."""
    return text.replace("\x00", "\\x00")


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a plain relative POSIX path under a data root, or ``None`` when it is."""
    if not path:
        return "empty path"
    if "\x00" in path:
        return "contains a NUL byte"
    if path.startswith("\\\\"):
        return "is a UNC path (\\\\server\\share)"
    if _DRIVE.match(path):
        return "starts with a drive letter"
    if "\\" in path:
        return "contains a backslash (not a POSIX path)"
    if path.startswith("/"):
        return "is absolute"
    if ".." in path.split("/"):
        return "contains a '..' segment"
    return None


def _text(value: Any) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise _Refused("contains a NUL byte")


def _number(rule: Range) -> Check:
    low, high = rule.low, rule.high

    def closed(value: Any) -> None:
        try:
            if low <= value <= high:  # False for NaN, and for the infinities with finite bounds
                return
        except TypeError:
            return  # not a number: the encoder reports the type
        raise _Refused(rule.describe(value))

    def half_open(value: Any) -> None:
        try:
            if low < value <= high:
                return
        except TypeError:
            return
        raise _Refused(rule.describe(value))

    return half_open if rule.low_open else closed


def _data_path(value: Any) -> None:
    if not isinstance(value, Mapping):
        return
    root = value.get("root")
    if isinstance(root, str) and (not root or "\x00" in root or "/" in root or "\\" in root):
        refused = _Refused(f"root {escape_nul(root)!r} is not a plain name")
        refused.segments.append("root")
        raise refused
    path = value.get("path")
    problem = path_problem(path) if isinstance(path, str) else None
    if problem is not None:
        assert isinstance(path, str)
        refused = _Refused(f"{escape_nul(path)!r} {problem}")
        refused.segments.append("path")
        raise refused


def _record(fields: list[tuple[str, Check]]) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, Mapping):
            return
        for name, inner in fields:
            item = value.get(name)
            if item is None:
                continue
            try:
                inner(item)
            except _Refused as refused:
                refused.segments.append(name)
                raise

    return check


def _array(items: Check) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, list | tuple):
            return
        for index, item in enumerate(value):
            if item is None:
                continue
            try:
                items(item)
            except _Refused as refused:
                refused.segments.append(f"[{index}]")
                raise

    return check


def _union(branches: list[Check]) -> Check:
    """Every branch's check: each passes values of the other branches' types untouched."""

    def check(value: Any) -> None:
        for branch in branches:
            branch(value)

    return check


def _map(values: Check) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, Mapping):
            return
        for key, item in value.items():
            if item is None:
                continue
            try:
                values(item)
            except _Refused as refused:
                refused.segments.append(f"[{key!r}]")
                raise

    return check


class _Compiler:
    """Turns one expanded schema into checks, remembering named records for later references."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def check_for(self, node: Any, field_name: str) -> Check | None:
        """The check of a value of schema ``node`` held by a field named ``field_name``."""
        if isinstance(node, list):
            branches = [self.check_for(branch, field_name) for branch in node if branch != "null"]
            checks = [check for check in branches if check is not None]
            if len(checks) <= 1:
                return checks[0] if checks else None
            return _union(checks)
        if isinstance(node, str):
            if node in self.named:
                return self.check_for(self.named[node], field_name)
            return self._primitive(node, field_name)
        kind = node.get("type")
        if node.get("logicalType") is not None:
            return None  # timestamps and the like: the encoder checks them
        if kind == "record":
            self.named[node["name"]] = node
            if node["name"] == _DATA_PATH:
                return _data_path
            fields = [(f["name"], self.check_for(f["type"], f["name"])) for f in node["fields"]]
            checked = [(name, check) for name, check in fields if check is not None]
            return _record(checked) if checked else None
        if kind == "array":
            items = self.check_for(node["items"], field_name)
            return _array(items) if items else None
        if kind == "map":
            values = self.check_for(node["values"], field_name)
            return _map(values) if values else None
        return self.check_for(kind, field_name) if kind is not None else None

    @staticmethod
    def _primitive(kind: str, field_name: str) -> Check | None:
        if kind == "string":
            return _text
        if kind in ("double", "float", "int", "long"):
            rule = range_for(field_name, floating=kind in ("double", "float"))
            return _number(rule) if rule is not None else None
        return None


@cache
def _plan(record: str, registry: SchemaRegistry) -> tuple[str, Check]:
    """The record's short name and its compiled check (built once per record name and registry)."""
    entry = registry.current(record)
    check = _Compiler().check_for(entry.schema, "")
    return entry.short_name, check or (lambda value: None)


def check_event(record: str, value: Mapping[str, Any], *, registry: SchemaRegistry | None = None) -> None:
    """Refuse ``value`` of ``record`` (short or full record name) if any field cannot be true.

    Fields the value lacks are not checked (the encoder fills defaults or refuses them); fields the
    schema does not know are ignored. ``registry`` holds the record's schema (the package's when
    omitted), e.g. a serde's registry with a schema newer than this package's.

    Raises
    ------
    InvalidEventError
        Naming the first offending field (dotted path, e.g. ``movie.path``) and the reason.
    """
    name, check = _plan(record, registry or default_registry())
    try:
        check(value)
    except _Refused as refused:
        raise InvalidEventError(name, refused.dotted(), refused.reason) from None
