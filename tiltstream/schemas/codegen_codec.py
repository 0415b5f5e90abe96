"""Source text of the generated codecs: binary writers and readers, and the dict conversions.

Every function here returns lines or expressions of Python source already in the form ``ruff
format`` gives them, so that the generated module stays byte-identical after the project's
formatter runs over it (the drift test compares text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tiltstream.schemas.codegen_types import AvroType, FieldDef, RecordDef, python_annotation, short_name

__all__ = ["CodecEmitter", "dict_from", "dict_to", "snake"]

_LINE = 110
_DIRECT = {  # kinds written and read by one helper of tiltstream.streams.avro_binary
    "boolean": "boolean",
    "int": "int",
    "long": "long",
    "float": "float",
    "double": "double",
    "bytes": "bytes",
    "string": "string",
    "timestamp-millis": "timestamp_millis",
}
_PACKED = {"double": "d", "float": "f"}


def snake(name: str) -> str:
    """``MovieAcquired`` -> ``movie_acquired``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", short_name(name)).lower()


def dict_from(kind: AvroType, src: str, depth: int = 0, check: str | None = None) -> str | None:
    """Expression turning ``src`` in fastavro's dict form into the typed value; None if it is the same.

    ``check`` is what an optional value is tested against None with (``src`` by default), e.g.
    ``value.get("x")`` for a field that may be missing from the dict.
    """
    if kind.kind == "named":
        return f"{short_name(kind.name)}.from_dict({src})"
    if kind.kind == "enum":
        return f"{short_name(kind.name)}({src})"
    if kind.kind in ("array", "map"):
        item = f"x{depth}"
        inner = dict_from(kind.item, item, depth + 1)
        if kind.kind == "array":
            return f"tuple({inner} for {item} in {src})" if inner else f"tuple({src})"
        return f"{{k{depth}: {inner} for k{depth}, {item} in {src}.items()}}" if inner else f"dict({src})"
    if kind.kind == "optional":
        inner = dict_from(kind.item, src, depth)
        return f"None if {check or src} is None else {inner}" if inner else None
    return None


def dict_to(kind: AvroType, src: str, depth: int = 0) -> str | None:
    """Expression turning the typed value ``src`` into fastavro's dict form; None if it is the same."""
    if kind.kind == "named":
        return f"{src}.to_dict()"
    if kind.kind == "enum":
        return f"{src}.value"
    if kind.kind in ("array", "map"):
        item = f"x{depth}"
        inner = dict_to(kind.item, item, depth + 1)
        if kind.kind == "array":
            return f"[{inner} for {item} in {src}]" if inner else f"list({src})"
        return f"{{k{depth}: {inner} for k{depth}, {item} in {src}.items()}}" if inner else f"dict({src})"
    if kind.kind == "optional":
        inner = dict_to(kind.item, src, depth)
        return f"None if {src} is None else {inner}" if inner else None
    return None


@dataclass
class CodecEmitter:
    """Collects the binary codec functions of a module and the helpers and structs they use."""

    helpers: set[str] = field(default_factory=set)  # names imported from avro_binary
    structs: dict[str, str] = field(default_factory=dict)  # constant name -> struct format
    functions: list[str] = field(default_factory=list)  # source of every function, in order
    _aux: dict[tuple[str, AvroType], str] = field(default_factory=dict)

    def helper(self, name: str) -> str:
        """Use ``name`` from avro_binary."""
        self.helpers.add(name)
        return name

    def function(self, direction: str, kind: AvroType) -> str:
        """Name of a ``write``/``read`` function for one value of ``kind`` (made on first use)."""
        if kind.kind in _DIRECT:
            return self.helper(f"{direction}_{_DIRECT[kind.kind]}")
        if kind.kind in ("named", "enum"):
            return f"_{direction}_{snake(kind.name)}"
        key = (direction, kind)
        if key not in self._aux:
            number = 1 + sum(1 for made, _ in self._aux if made == direction)
            name = f"_{direction}_value_{number}"
            self._aux[key] = name
            self.functions.append(self._aux_function(direction, name, kind))
        return self._aux[key]

    def _aux_function(self, direction: str, name: str, kind: AvroType) -> str:
        annotation = python_annotation(kind)
        if direction == "write":
            body = self._write_value(kind, "value")
            return f"def {name}(out: bytearray, value: {annotation}) -> None:\n" + "\n".join(body) + "\n"
        body = [*self._read_value(kind, "value"), "    return value, pos"]
        head = f"def {name}(buf: bytes, pos: int) -> tuple[{annotation}, int]:\n"
        return head + "\n".join(body) + "\n"

    def _write_value(self, kind: AvroType, src: str, indent: str = "    ") -> list[str]:
        if kind.kind == "optional":
            null, other = (0, 2) if kind.null_index == 0 else (2, 0)
            inner = self._write_value(kind.item, src, indent + "    ")
            return [
                f"{indent}if {src} is None:",
                f"{indent}    out.append({null})",
                f"{indent}else:",
                f"{indent}    out.append({other})",
                *inner,
            ]
        if kind.kind in ("array", "map"):
            container = self.helper(f"write_{kind.kind}")
            return [f"{indent}{container}(out, {src}, {self.function('write', kind.item)})"]
        return [f"{indent}{self.function('write', kind)}(out, {src})"]

    def _read_value(self, kind: AvroType, target: str, indent: str = "    ") -> list[str]:
        if kind.kind == "optional":
            null, other = (0, 2) if kind.null_index == 0 else (2, 0)
            branch = self.helper("read_branch")
            reader = self._read_call(kind.item, f"{branch}(buf, pos, {other})")
            return [
                f"{indent}if buf[pos] == {null}:",
                f"{indent}    {target} = None",
                f"{indent}    pos += 1",
                f"{indent}else:",
                f"{indent}    {target}, pos = {reader}",
            ]
        return [f"{indent}{target}, pos = {self._read_call(kind, 'pos')}"]

    def _read_call(self, kind: AvroType, pos: str) -> str:
        if kind.kind in ("array", "map"):
            container = self.helper(f"read_{kind.kind}")
            return f"{container}(buf, {pos}, {self.function('read', kind.item)})"
        return f"{self.function('read', kind)}(buf, {pos})"

    def _packed_runs(self, fields: tuple[FieldDef, ...]) -> list[list[FieldDef]]:
        """Fields in order, consecutive doubles and floats grouped so one struct call fits a line."""
        runs: list[list[FieldDef]] = []
        for fld in fields:
            last = runs[-1] if runs else None
            packable = fld.type.kind in _PACKED
            if packable and last and last[0].type.kind in _PACKED:
                names = ", ".join(f"f_{f.name}" for f in [*last, fld])
                if len(f"    {names} = _PACK_{'d' * (len(last) + 1)}.unpack_from(buf, pos)") <= _LINE:
                    last.append(fld)
                    continue
            runs.append([fld])
        return runs

    def _struct(self, run: list[FieldDef]) -> str:
        fmt = "".join(_PACKED[f.type.kind] for f in run)
        name = f"_DOUBLES_{len(fmt)}" if set(fmt) == {"d"} else f"_PACK_{fmt}"
        self.structs[name] = f"<{fmt}"
        return name

    def record_writer(self, record: RecordDef) -> None:
        """Add ``_write_<record>``: the record's body, field by field."""
        cls, body = short_name(record.full_name), []
        for run in self._packed_runs(record.fields):
            if run[0].type.kind in _PACKED:
                values = ", ".join(f"value.{f.name}" for f in run)
                body.append(f"    out += {self._struct(run)}.pack({values})")
            else:
                body += self._write_value(run[0].type, f"value.{run[0].name}")
        head = f"def _write_{snake(record.full_name)}(out: bytearray, value: {cls}) -> None:\n"
        self.functions.append(head + "\n".join(body) + "\n")

    def record_reader(self, record: RecordDef) -> None:
        """Add ``_read_<record>``: fields in order, then the frozen record."""
        cls, body = short_name(record.full_name), []
        for run in self._packed_runs(record.fields):
            if run[0].type.kind in _PACKED:
                names = ", ".join(f"f_{f.name}" for f in run)
                unpacked = f"({names},)" if len(run) == 1 else names
                body.append(f"    {unpacked} = {self._struct(run)}.unpack_from(buf, pos)")
                body.append(f"    pos += {sum(8 if f.type.kind == 'double' else 4 for f in run)}")
            else:
                body += self._read_value(run[0].type, f"f_{run[0].name}")
        body.append(f"    record = {cls}(")
        body += [f"        {f.name}=f_{f.name}," for f in record.fields]
        body += ["    )", "    return record, pos"]
        head = f"def _read_{snake(record.full_name)}(buf: bytes, pos: int) -> tuple[{cls}, int]:\n"
        self.functions.append(head + "\n".join(body) + "\n")
