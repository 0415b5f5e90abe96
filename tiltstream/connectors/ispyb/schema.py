"""The ISPyB tables the sink writes: creating them on each database, and checking that they are there.

The models are the ``ispyb`` package's (ISPyB schema 5.2.0). On MariaDB they are used as they are. On
PostgreSQL and SQLite the MySQL-only types are adapted (``TINYINT``/``MEDIUMINT``/``INTEGER(n)`` to plain
integers, ``MEDIUMTEXT``/``LONGTEXT`` to text, unnamed ``ENUM`` to ``VARCHAR``, ``BINARY`` to binary,
``current_timestamp()`` defaults to ``CURRENT_TIMESTAMP``) and index names are made unique per database.
Only the sink's tables are created, without foreign keys to tables outside that set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from ispyb.sqlalchemy import Base
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from tiltstream.log import get_logger

if TYPE_CHECKING:
    from tiltstream.connectors.ispyb.probe import SchemaInfo

__all__ = ["SINK_TABLES", "SchemaMismatchError", "check_schema", "create_tables", "sink_metadata"]

#: The tables the sink reads and writes, parents first.
SINK_TABLES: tuple[str, ...] = (
    "Person",
    "Proposal",
    "BLSession",
    "DataCollectionGroup",
    "DataCollection",
    "ProcessingJob",
    "ProcessingJobParameter",
    "AutoProcProgram",
    "Movie",
    "MotionCorrection",
    "CTF",
    "Tomogram",
    "TiltImageAlignment",
    "ProcessedTomogram",
)

_log = get_logger(__name__)


class SchemaMismatchError(RuntimeError):
    """The database lacks tables or columns the sink needs (the message names each of them)."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "the ISPyB database lacks what the sink needs: "
            + "; ".join(missing)
            + " (a schema version the sink does not know; `tiltstream sink ispyb init-db` makes a"
            " development database)"
        )


def _portable_type(column: sa.Column[Any]) -> sa.types.TypeEngine[Any] | None:
    """A type for PostgreSQL/SQLite in place of ``column``'s MySQL one (``None``: keep it)."""
    kind = column.type
    if isinstance(kind, mysql.TINYINT | mysql.SMALLINT):
        return sa.SmallInteger()
    if isinstance(kind, mysql.MEDIUMINT | mysql.INTEGER):
        return sa.Integer()
    if isinstance(kind, mysql.BIGINT):
        return sa.BigInteger()
    if isinstance(kind, mysql.MEDIUMTEXT | mysql.LONGTEXT | mysql.TINYTEXT):
        return sa.Text()
    if isinstance(kind, mysql.LONGBLOB | mysql.MEDIUMBLOB | mysql.TINYBLOB):
        return sa.LargeBinary()
    if isinstance(kind, sa.Enum):
        return sa.String(max(len(v) for v in kind.enums))
    if isinstance(kind, sa.BINARY | sa.VARBINARY):
        return sa.LargeBinary(kind.length)
    if isinstance(kind, mysql.VARCHAR):
        return sa.String(kind.length)
    return None


def _server_default(column: sa.Column[Any], portable: bool) -> sa.DefaultClause | None:
    default = column.server_default
    if not isinstance(default, sa.DefaultClause):
        return None
    if portable and "current_timestamp" in str(default.arg).lower():
        return sa.DefaultClause(sa.text("CURRENT_TIMESTAMP"))
    return sa.DefaultClause(default.arg)


def sink_metadata(dialect: str, tables: Iterable[str] = SINK_TABLES) -> sa.MetaData:
    """A :class:`~sqlalchemy.MetaData` holding copies of ``tables``, adapted to ``dialect``.

    Parameters
    ----------
    dialect
        ``mysql`` (MariaDB), ``postgresql`` or ``sqlite``.
    tables
        Table names of the ISPyB models.
    """
    names = list(tables)
    portable = dialect != "mysql"
    metadata = sa.MetaData()
    for name in names:
        model = Base.metadata.tables[name]
        items: list[sa.schema.SchemaItem] = []
        for column in model.columns:
            kind = (_portable_type(column) if portable else None) or column.type.copy()
            items.append(
                sa.Column(
                    column.name,
                    kind,
                    primary_key=column.primary_key,
                    nullable=column.nullable,
                    autoincrement=column.autoincrement,
                    server_default=_server_default(column, portable),
                    comment=None if portable else column.comment,
                )
            )
        for constraint in model.foreign_key_constraints:
            target = constraint.elements[0].target_fullname.split(".")[0]
            if target in names:
                items.append(
                    sa.ForeignKeyConstraint(
                        [c.name for c in constraint.columns],
                        [e.target_fullname for e in constraint.elements],
                        name=constraint.name,
                        ondelete=constraint.ondelete,
                        onupdate=constraint.onupdate,
                    )
                )
        for index in model.indexes:
            index_name = str(index.name)
            if portable and not index_name.startswith(f"{name}_"):
                index_name = f"{name}_{index_name}"[:63]
            items.append(sa.Index(index_name, *[c.name for c in index.columns], unique=index.unique))
        sa.Table(name, metadata, *items, comment=None if portable else model.comment)
    return metadata


def create_tables(engine: Engine) -> list[str]:
    """Create the sink's tables that ``engine``'s database lacks; return the names created."""
    metadata = sink_metadata(engine.dialect.name)
    existing = set(sa.inspect(engine).get_table_names())
    metadata.create_all(engine, checkfirst=True)
    return [name for name in SINK_TABLES if name not in existing]


def check_schema(engine: Engine) -> SchemaInfo:
    """Probe ``engine``'s database (see :mod:`~tiltstream.connectors.ispyb.probe`) and log what was found.

    Raises
    ------
    SchemaMismatchError
        Naming every table, column and routine the sink needs but cannot find (the sink refuses to start).
    """
    from tiltstream.connectors.ispyb.probe import probe_schema

    info = probe_schema(engine)
    _log.info("ispyb schema", schema=info.describe(), version=info.version, canonical=info.canonical)
    return info
