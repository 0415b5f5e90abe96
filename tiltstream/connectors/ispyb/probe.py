"""What the sink finds in an ISPyB database at start-up: which schema, which version, which columns.

Two kinds of database:

* **canonical** — Diamond's ispyb-database SQL on MariaDB, with its stored routines. The sink connects as
  the ``ispyb_processing`` role, which may not read or write Person, Proposal, BLSession,
  DataCollectionGroup or DataCollection: visits are found with ``retrieve_visit_id``, data collections are
  written with ``upsert_dcgroup``/``upsert_dc`` and read back with ``retrieve_dc_main``;
* **ORM-built** — the tables ``tiltstream sink ispyb init-db`` makes from the ``ispyb`` package's models
  (SQLite, PostgreSQL, or MariaDB without the routines), written directly.

Columns that differ between schema versions (:data:`OPTIONAL_COLUMNS`) are used only where present;
every other column of the models is required, and a database lacking one is refused with the list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import Base
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine

from tiltstream.connectors.ispyb.schema import SINK_TABLES, SchemaMismatchError

__all__ = [
    "ACQUISITION_TABLES",
    "OPTIONAL_COLUMNS",
    "ROUTINES",
    "SchemaInfo",
    "probe_schema",
]

#: Columns of the models that some schema versions lack (``table.column``).
OPTIONAL_COLUMNS: frozenset[str] = frozenset({"AutoProcProgram.jobUuid", "Tomogram.thickness"})

#: The tables a canonical database's processing role reaches only through stored routines.
ACQUISITION_TABLES: tuple[str, ...] = (
    "Person",
    "Proposal",
    "BLSession",
    "DataCollectionGroup",
    "DataCollection",
)

#: The stored routines the sink calls on a canonical database, with their kind.
ROUTINES: Mapping[str, str] = {
    "retrieve_visit_id": "FUNCTION",
    "upsert_dcgroup": "FUNCTION",
    "upsert_dc": "FUNCTION",
    "retrieve_dc_main": "PROCEDURE",
}


@dataclass(frozen=True)
class SchemaInfo:
    """What the sink found.

    Attributes
    ----------
    canonical
        The canonical schema's routines are there (write acquisition rows through them).
    version
        ``AdminVar.schemaVersion`` (``None`` when the database has none, as ORM-built ones).
    present
        Every ``table.column`` seen (routine parameters ``p_x`` count as ``DataCollection.x``).
    lengths
        Character length of each text column (``table.column``).
    unsigned
        Numeric columns that refuse negative values.
    parameters
        The routines' parameter names in order (canonical only).
    """

    canonical: bool
    version: str | None
    present: frozenset[str]
    lengths: Mapping[str, int] = field(default_factory=dict)
    unsigned: frozenset[str] = frozenset()
    parameters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, table: str, column: str) -> bool:
        """Whether ``table.column`` exists in this database."""
        return f"{table}.{column}" in self.present

    def describe(self) -> str:
        """One line for logs and ``tiltstream status``."""
        kind = "canonical (stored routines)" if self.canonical else "ORM-built"
        absent = sorted(OPTIONAL_COLUMNS - self.present)
        return f"{kind}, schemaVersion {self.version or 'unknown'}" + (
            f", without {', '.join(absent)}" if absent else ""
        )


def _unsigned(kind: Any) -> bool:
    return bool(getattr(kind, "unsigned", False)) and isinstance(
        kind, mysql.FLOAT | mysql.DOUBLE | sa.Integer
    )


def _columns(connection: Connection, tables: tuple[str, ...]) -> tuple[set[str], dict[str, int], set[str]]:
    inspector = sa.inspect(connection)
    visible = set(inspector.get_table_names())
    present: set[str] = set()
    lengths: dict[str, int] = {}
    unsigned: set[str] = set()
    for table in tables:
        if table not in visible:
            continue
        for column in inspector.get_columns(table):
            key = f"{table}.{column['name']}"
            present.add(key)
            length = getattr(column["type"], "length", None)
            if isinstance(column["type"], sa.String) and length:
                lengths[key] = int(length)
            if _unsigned(column["type"]):
                unsigned.add(key)
    return present | {f"{t}" for t in tables if t in visible}, lengths, unsigned


def _routines(connection: Connection) -> dict[str, list[tuple[str, int | None]]]:
    """Parameters (name, character length) of the :data:`ROUTINES` this account may execute."""
    rows = connection.execute(
        sa.text(
            "SELECT r.ROUTINE_NAME, r.ROUTINE_TYPE, p.PARAMETER_NAME, p.CHARACTER_MAXIMUM_LENGTH "
            "FROM information_schema.ROUTINES r LEFT JOIN information_schema.PARAMETERS p "
            "ON p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.ROUTINE_NAME "
            "AND p.ROUTINE_TYPE = r.ROUTINE_TYPE AND p.ORDINAL_POSITION > 0 "
            "WHERE r.ROUTINE_SCHEMA = DATABASE() AND r.ROUTINE_NAME IN :names "
            "ORDER BY r.ROUTINE_NAME, p.ORDINAL_POSITION"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"names": list(ROUTINES)},
    )
    found: dict[str, list[tuple[str, int | None]]] = {}
    for name, kind, parameter, length in rows:
        if ROUTINES.get(str(name)) != str(kind):
            continue
        found.setdefault(str(name), [])
        if parameter is not None:
            found[str(name)].append((str(parameter), None if length is None else int(length)))
    return found


def _version(connection: Connection) -> str | None:
    """``AdminVar.schemaVersion`` when this account can read it (the canonical schema's version)."""
    if "AdminVar" not in sa.inspect(connection).get_table_names():
        return None
    value = connection.execute(
        sa.text("SELECT `value` FROM AdminVar WHERE `name` = 'schemaVersion'")
    ).scalar()
    return None if value is None else str(value)


def _canonical(connection: Connection) -> SchemaInfo:
    routines = _routines(connection)
    missing = [f"{ROUTINES[name].lower()} {name}" for name in ROUTINES if name not in routines]
    writable = tuple(t for t in SINK_TABLES if t not in ACQUISITION_TABLES)
    present, lengths, unsigned = _columns(connection, writable)
    for name in ("upsert_dc", "upsert_dcgroup"):
        table = "DataCollection" if name == "upsert_dc" else "DataCollectionGroup"
        for parameter, length in routines.get(name, []):
            column = parameter.removeprefix("p_").lower()
            present.add(f"{table}.{column}")
            if length:
                lengths[f"{table}.{column}"] = length
    for parameter, length in routines.get("retrieve_visit_id", []):
        if length:
            lengths[f"retrieve_visit_id.{parameter}"] = length
    missing += _missing(present, writable)
    needed = {"upsert_dc": ("imagePrefix", "imageDirectory", "imageSuffix", "starttime", "endtime")}
    missing += [
        f"parameter upsert_dc.p_{column}"
        for column in needed["upsert_dc"]
        if routines.get("upsert_dc") and not _has_parameter(routines["upsert_dc"], column)
    ]
    if missing:
        raise SchemaMismatchError(missing)
    parameters = {name: tuple(p for p, _ in params) for name, params in routines.items()}
    return SchemaInfo(
        True, _version(connection), frozenset(present), lengths, frozenset(unsigned), parameters
    )


def _has_parameter(parameters: list[tuple[str, int | None]], column: str) -> bool:
    return any(p.lower() == f"p_{column}".lower() for p, _ in parameters)


def _missing(present: set[str], tables: tuple[str, ...]) -> list[str]:
    missing: list[str] = []
    for table in tables:
        if table not in present:
            missing.append(f"table {table}")
            continue
        missing += [
            f"column {table}.{column.name}"
            for column in Base.metadata.tables[table].columns
            if f"{table}.{column.name}" not in present and f"{table}.{column.name}" not in OPTIONAL_COLUMNS
        ]
    return missing


def probe_schema(bind: Engine | Connection, *, require: bool = True) -> SchemaInfo:
    """Find out what kind of ISPyB database ``bind`` is, and check that the sink can write it.

    Parameters
    ----------
    bind
        The database, as the account that will use it.
    require
        Refuse a database lacking what the sink needs (off: just report what a reader can see).

    Raises
    ------
    SchemaMismatchError
        Naming every table, column or routine the sink needs and cannot find.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return probe_schema(connection, require=require)
    if require and bind.dialect.name == "mysql" and _routines(bind):
        return _canonical(bind)
    present, lengths, unsigned = _columns(bind, SINK_TABLES)
    missing = _missing(present, SINK_TABLES)
    if missing and require:
        raise SchemaMismatchError(missing)
    version = _version(bind) if bind.dialect.name == "mysql" else None
    return SchemaInfo(False, version, frozenset(present), lengths, frozenset(unsigned))
