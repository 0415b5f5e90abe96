"""Setting column values so that writing the same facts again changes nothing.

:meth:`Rows.assign` checks each value against the column *as the database has it* first (text longer than
the column, a negative number for an unsigned column, a number out of a small integer's range) so that a
record that can never be written is rejected with the column named, the same way on MariaDB (strict
mode), PostgreSQL and SQLite (which would store it silently). Floats are
compared to six significant digits (MariaDB's ``FLOAT`` as its text protocol returns it) and times at
whole seconds (``DATETIME``), so a replay finds the stored value equal and issues no ``UPDATE``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import InstrumentedAttribute, ORMExecuteState, Session, defer

from tiltstream.connectors.ispyb.errors import RecordRejectedError

if TYPE_CHECKING:
    from tiltstream.connectors.ispyb.probe import SchemaInfo

__all__ = ["Rows", "db_time", "earliest", "latest"]

_INTEGER_RANGES: tuple[tuple[type[sa.types.TypeEngine[Any]], int, int], ...] = (
    (mysql.TINYINT, -(2**7), 2**7 - 1),
    (mysql.SMALLINT, -(2**15), 2**15 - 1),
    (mysql.MEDIUMINT, -(2**23), 2**23 - 1),
    (sa.Integer, -(2**31), 2**31 - 1),
)


#: Of a column: its name as shown, whether present, length, unsigned, integer range.
_Spec = tuple[str, bool, int | None, bool, tuple[int, int] | None]


def db_time(moment: datetime | None) -> datetime | None:
    """A naive UTC time at whole seconds, as ``DATETIME`` columns hold it."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def earliest(current: datetime | None, new: datetime | None) -> datetime | None:
    """The earlier of two optional times (merging in any order gives the same answer)."""
    return min((t for t in (current, new) if t is not None), default=None)


def latest(current: datetime | None, new: datetime | None) -> datetime | None:
    """The later of two optional times."""
    return max((t for t in (current, new) if t is not None), default=None)


def _same(old: object, new: object) -> bool:
    if isinstance(old, float) and isinstance(new, float | int):
        return math.isclose(old, float(new), rel_tol=1e-5, abs_tol=1e-9)
    return old == new


class Rows:
    """Checked, change-only writes of ORM rows for one database's schema.

    Parameters
    ----------
    schema
        What the start-up probe found: column lengths, unsigned columns, columns absent in this version.
    """

    def __init__(self, schema: SchemaInfo) -> None:
        self.schema = schema
        self._specs: dict[tuple[str, str, bool], _Spec] = {}
        self._absent: list[InstrumentedAttribute[Any]] = []
        for key in sorted(_optional_columns() - schema.present):
            table, column = key.split(".")
            model = _model(table)
            self._absent.append(getattr(model, column))

    def check(
        self, table: str, name: str, value: object, kind: sa.types.TypeEngine[Any] | None = None
    ) -> None:
        """Raise :class:`RecordRejectedError` unless ``value`` fits column ``table.name``."""
        if value is None:
            return
        spec = self._specs.get((table, name, kind is None))
        if spec is None:
            spec = self._specs[(table, name, kind is None)] = self._spec(table, name, kind)
        shown, present, length, unsigned, span = spec
        if not present:
            raise RecordRejectedError(f"{shown} does not exist in this ISPyB schema version")
        if isinstance(value, str):
            if length and len(value) > length:
                raise RecordRejectedError(
                    f"{shown} holds {length} characters, the value has {len(value)}: {value[:80]!r}"
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise RecordRejectedError(f"{shown} cannot hold {value}")
            if unsigned and value < 0:
                raise RecordRejectedError(f"{shown} is unsigned and cannot hold {value}")
            if isinstance(value, int) and span is not None and not span[0] <= value <= span[1]:
                raise RecordRejectedError(f"{shown} cannot hold {value} (range {span[0]}..{span[1]})")

    def _spec(self, table: str, name: str, kind: sa.types.TypeEngine[Any] | None) -> _Spec:
        """What :meth:`check` needs to know of column ``table.name`` (worked out once per column)."""
        key = shown = f"{table}.{name}"
        if key not in self.schema.present:
            key = f"{table}.{name.lower()}"  # a routine's parameter (``p_imageprefix``)
        length = self.schema.lengths.get(key) or (getattr(kind, "length", None) if kind is not None else None)
        unsigned = key in self.schema.unsigned
        span = None
        for integer_type, low, high in _INTEGER_RANGES if kind is not None else ():
            if isinstance(kind, integer_type):
                if getattr(kind, "unsigned", False) or unsigned:
                    low, high = 0, 2 * high + 1
                span = (low, high)
                break
        return shown, key in self.schema.present, length, unsigned, span

    def assign(self, row: Any, **values: object) -> int:
        """Set ``values`` on ORM ``row`` where they differ; return 1 when anything changed, else 0.

        Raises
        ------
        RecordRejectedError
            When a value cannot fit its column (or the column does not exist in this schema version).
        """
        table: sa.Table = row.__table__
        changed = 0
        for name, value in values.items():
            if isinstance(value, datetime):
                value = db_time(value)
            self.check(table.name, name, value, table.c[name].type)
            if not _same(getattr(row, name), value):
                setattr(row, name, value)
                changed = 1
        return changed

    def insert(self, session: Session, model: type[Any], **values: object) -> Any:
        """Insert a row of ``model`` with only ``values`` (columns absent in this version stay out of it).

        Returns the row, loaded in ``session``.
        """
        table: sa.Table = model.__table__
        for name, value in values.items():
            self.check(table.name, name, value, table.c[name].type)
        if session.get_bind().dialect.insert_returning:  # one round trip: the row comes back with it
            present = [c for c in table.columns if f"{table.name}.{c.name}" in self.schema.present]
            inserted = sa.insert(table).values(**values).returning(*present)
            return session.scalars(sa.select(model).from_statement(inserted)).one()
        result = session.execute(sa.insert(table).values(**values))
        assert isinstance(result, sa.CursorResult)
        key = tuple(result.inserted_primary_key or ())
        if any(part is None for part in key):
            key = tuple(values[c.name] for c in table.primary_key.columns)
        return session.get_one(model, key[0] if len(key) == 1 else key)

    def watch(self, session: Session) -> Session:
        """Make ``session``'s ORM queries leave out the columns this schema version lacks."""
        if self._absent:
            event.listen(session, "do_orm_execute", self._leave_out_absent)
        return session

    def _leave_out_absent(self, state: ORMExecuteState) -> None:
        if not state.is_select:
            return
        descriptions = getattr(state.statement, "column_descriptions", [])
        classes = {
            d["entity"] for d in descriptions if d.get("entity") is not None and d["expr"] is d["entity"]
        }
        options = [defer(column, raiseload=True) for column in self._absent if column.class_ in classes]
        if options:
            state.statement = state.statement.options(*options)


def _optional_columns() -> frozenset[str]:
    from tiltstream.connectors.ispyb.probe import OPTIONAL_COLUMNS

    return OPTIONAL_COLUMNS


def _model(table: str) -> type[Any]:
    import ispyb.sqlalchemy as models

    found: type[Any] = getattr(models, table)
    return found
