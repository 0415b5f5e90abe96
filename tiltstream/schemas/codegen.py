"""Generate :mod:`tiltstream.streams.events`, the typed records of every schema in ``schemas/``.

Run ``python -m tiltstream.schemas.codegen`` (or ``tiltstream schemas generate``) after changing a
``.avsc``; ``--check`` only reports whether the committed module is stale. The module holds, for
every record, a frozen slotted dataclass with the schema's docs, ``from_dict``/``to_dict`` for the
dict form fastavro reads and writes, and a binary writer and reader of the current schema that
:class:`~tiltstream.streams.serde.AvroSerde` uses to encode and decode typed records without a
schema walk per message. Enums become ``StrEnum`` classes. The text is passed through the
project's ``ruff format``, so that formatting the tree leaves it unchanged.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from tiltstream.schemas.codegen_codec import CodecEmitter, dict_from, dict_to, snake
from tiltstream.schemas.codegen_types import (
    EnumDef,
    FieldDef,
    RecordDef,
    collect_named,
    python_annotation,
    short_name,
    sorted_by_dependency,
)
from tiltstream.streams.schema_registry import SchemaRegistry, default_registry

__all__ = ["GENERATED_MODULE", "generate_module", "is_stale", "main", "write_module"]

#: The generated module, in the source tree.
GENERATED_MODULE = Path(__file__).resolve().parents[1] / "streams" / "events.py"
_COMMAND = "python -m tiltstream.schemas.codegen"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _wrap(text: str, indent: str, first: int = 0) -> list[str]:
    width = 110 - len(indent)
    lines = textwrap.wrap(_escape(text), width=width, initial_indent=" " * first, break_long_words=False)
    return [f"{indent}{line.lstrip() if i == 0 and first else line}" for i, line in enumerate(lines)]


def _docstring(summary: str, fields: Sequence[FieldDef] = ()) -> list[str]:
    lines = _wrap(summary or "(no doc in the schema)", "    ", first=3) or ['    """']
    lines[0] = '    """' + lines[0].lstrip()
    if fields:
        lines += ["", "    Attributes", "    ----------"]
        for fld in fields:
            lines.append(f"    {fld.name} : {python_annotation(fld.type)}")
            lines += _wrap(fld.doc or "(no doc in the schema)", "        ")
    lines.append('    """')
    return lines


def _default(fld: FieldDef) -> str:
    if not fld.has_default:
        return ""
    value = fld.default
    kind = fld.type.item if fld.type.kind == "optional" else fld.type
    if kind.kind == "array" and value == []:
        return " = ()"
    if kind.kind == "enum" and isinstance(value, str):
        return f" = {short_name(kind.name)}.{value}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return f" = {value!r}"
    raise ValueError(f"field {fld.name}: default {json.dumps(value)} is not supported by the generator")


def _source_of(fld: FieldDef) -> str:
    if not fld.has_default:
        return f'value["{fld.name}"]'
    if fld.default is None:
        return f'value.get("{fld.name}")'
    return f'value.get("{fld.name}", {fld.default!r})'


def _record_class(record: RecordDef) -> str:
    cls = short_name(record.full_name)
    lines = ["@dataclass(frozen=True, slots=True, kw_only=True)", f"class {cls}:"]
    lines += [*_docstring(record.doc, record.fields), ""]
    lines += [f"    {f.name}: {python_annotation(f.type)}{_default(f)}" for f in record.fields]
    lines += ["", "    @classmethod", f"    def from_dict(cls, value: Mapping[str, Any]) -> {cls}:"]
    lines += ['        """Build the record from the dict form that fastavro reads and writes."""']
    lines.append("        return cls(")
    for fld in record.fields:
        src = _source_of(fld)
        if fld.type.kind == "optional" and fld.default is None:  # mypy: test .get(), then use [...]
            converted = dict_from(fld.type, f'value["{fld.name}"]', check=src)
        else:
            converted = dict_from(fld.type, src)
        lines.append(f"            {fld.name}={converted or src},")
    lines += ["        )", "", "    def to_dict(self) -> dict[str, Any]:"]
    lines += ['        """The dict form that fastavro reads and writes."""', "        return {"]
    for fld in record.fields:
        src = f"self.{fld.name}"
        lines.append(f'            "{fld.name}": {dict_to(fld.type, src) or src},')
    lines.append("        }")
    return "\n".join(lines) + "\n"


def _enum_class(enum: EnumDef) -> str:
    lines = [f"class {short_name(enum.full_name)}(StrEnum):", *_docstring(enum.doc), ""]
    lines += [f'    {symbol} = "{symbol}"' for symbol in enum.symbols]
    return "\n".join(lines) + "\n"


def _enum_codec(enum: EnumDef, emitter: CodecEmitter) -> None:
    cls, name = short_name(enum.full_name), snake(enum.full_name)
    symbols = f"_{name.upper()}_SYMBOLS"
    emitter.functions.append(
        f"{symbols}: tuple[{cls}, ...] = tuple({cls})\n"
        f"_{name.upper()}_INDEX: dict[str, int] = {{symbol: i for i, symbol in enumerate({symbols})}}\n"
    )
    write_long, read_enum = emitter.helper("write_long"), emitter.helper("read_enum")
    emitter.functions.append(
        f"def _write_{name}(out: bytearray, value: {cls}) -> None:\n"
        f"    {write_long}(out, _{name.upper()}_INDEX[value])\n"
    )
    emitter.functions.append(
        f"def _read_{name}(buf: bytes, pos: int) -> tuple[{cls}, int]:\n"
        f"    return {read_enum}(buf, pos, {symbols})\n"
    )


def _codecs_table(records: list[RecordDef], fingerprints: dict[str, int]) -> str:
    lines = [
        "#: The generated binary codec of every record, by record class.",
        "CODECS: Mapping[type[Any], RecordCodec[Any]] = {",
    ]
    for record in records:
        cls, name = short_name(record.full_name), snake(record.full_name)
        fingerprint = f"0x{fingerprints[record.full_name]:016X}"
        args = f'"{record.full_name}", {fingerprint}, {cls}, _write_{name}, _read_{name}'
        lines.append(f"    {cls}: RecordCodec({args}),")
    return "\n".join([*lines, "}"]) + "\n"


def _header(emitter: CodecEmitter, exports: list[str], enums: bool) -> str:
    helpers = ", ".join(sorted(emitter.helpers | {"RecordCodec"}))
    structs = "\n".join(f'{name} = struct.Struct("{fmt}")' for name, fmt in sorted(emitter.structs.items()))
    imports = [
        "from __future__ import annotations",
        "",
        "import struct",
        "from collections.abc import Mapping",
        "from dataclasses import dataclass",
        "from datetime import datetime",
        *(["from enum import StrEnum"] if enums else []),
        "from typing import Any",
        "",
        f"from tiltstream.streams.avro_binary import {helpers}",
    ]
    doc = '"""Typed records of every schema in ``tiltstream/schemas/``.\n\n'
    doc += f'Generated by ``{_COMMAND}`` from the ``.avsc`` files; do not edit.\n"""\n'
    return f"{doc}\n" + "\n".join(imports) + f"\n\n__all__ = {json.dumps(sorted(exports))}\n\n{structs}\n"


def generate_module(registry: SchemaRegistry | None = None) -> str:
    """The source of the generated module for ``registry`` (the installed schemas by default)."""
    registry = registry or default_registry()
    entries = list(registry)
    ordered = sorted_by_dependency(collect_named(entry.schema for entry in entries))
    emitter = CodecEmitter()
    records = [d for d in ordered if isinstance(d, RecordDef)]
    classes: list[str] = []
    for definition in ordered:
        if isinstance(definition, EnumDef):
            classes.append(_enum_class(definition))
            _enum_codec(definition, emitter)
        else:
            classes.append(_record_class(definition))
            emitter.record_writer(definition)
            emitter.record_reader(definition)
    fingerprints = {entry.name: entry.fingerprint for entry in entries}
    exports = ["CODECS", *(short_name(d.full_name) for d in ordered)]
    parts = [*classes, *emitter.functions, _codecs_table(records, fingerprints)]
    enums = any(isinstance(d, EnumDef) for d in ordered)
    text = _header(emitter, exports, enums) + "\n\n" + "\n\n".join(parts)
    return _ruff_format(text)


def _ruff_format(text: str) -> str:
    command = [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(GENERATED_MODULE), "-"]
    try:
        done = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    except OSError as exc:  # pragma: no cover - the interpreter itself could not be started
        raise RuntimeError(f"cannot run ruff to format the generated module: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"ruff format failed on the generated module (is ruff installed?): {done.stderr}")
    return done.stdout


def is_stale(path: Path = GENERATED_MODULE, registry: SchemaRegistry | None = None) -> bool:
    """True when ``path`` is missing or differs from what the schemas generate."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    return current != generate_module(registry)


def write_module(path: Path = GENERATED_MODULE, registry: SchemaRegistry | None = None) -> bool:
    """Write the generated module to ``path``; True when its content changed."""
    text = generate_module(registry)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate the module, or with ``--check`` report whether it is stale."""
    parser = argparse.ArgumentParser(prog=_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the module is stale")
    parser.add_argument("--output", type=Path, default=GENERATED_MODULE)
    args = parser.parse_args(argv)
    if args.check:
        stale = is_stale(args.output)
        print(f"{args.output} is {'stale: run ' + _COMMAND if stale else 'up to date'}")
        return 1 if stale else 0
    changed = write_module(args.output)
    print(f"{'wrote' if changed else 'unchanged:'} {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
