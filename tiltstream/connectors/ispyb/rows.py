"""Setting column values so that writing the same facts again changes nothing.

:func:`assign` checks each value against its column first (text too long for the column, a number out of
an unsigned or small integer's range) so that a record that can never be written is rejected the same
way on MariaDB (strict mode), PostgreSQL and SQLite (which would store it silently). Floats are
compared to six significant digits (MariaDB's ``FLOAT`` as its text protocol returns it) and times at
whole seconds (``DATETIME``), so a replay finds the stored value equal and issues no ``UPDATE``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tiltstream.connectors.ispyb.errors import RecordRejectedError

__all__ = ["assign", "db_time", "earliest", "latest"]

_INTEGER_RANGES: tuple[tuple[type[sa.types.TypeEngine[Any]], int, int], ...] = (
    (mysql.TINYINT, -(2**7), 2**7 - 1),
    (mysql.SMALLINT, -(2**15), 2**15 - 1),
    (mysql.MEDIUMINT, -(2**23), 2**23 - 1),
    (sa.Integer, -(2**31), 2**31 - 1),
)


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


def _check(table: sa.Table, name: str, value: object) -> None:
    column = table.c[name]
    kind = column.type
    if isinstance(value, str) and isinstance(kind, sa.String) and kind.length and len(value) > kind.length:
        raise RecordRejectedError(
            f"{table.name}.{name} holds {kind.length} characters, the value has {len(value)}: {value[:80]!r}"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        for integer_type, low, high in _INTEGER_RANGES:
            if isinstance(kind, integer_type):
                if getattr(kind, "unsigned", False):
                    low, high = 0, 2 * high + 1
                if not low <= value <= high:
                    raise RecordRejectedError(
                        f"{table.name}.{name} cannot hold {value} (range {low}..{high})"
                    )
                break
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordRejectedError(f"{table.name}.{name} cannot hold {value}")


def _same(old: object, new: object) -> bool:
    if isinstance(old, float) and isinstance(new, float | int):
        return math.isclose(old, float(new), rel_tol=1e-5, abs_tol=1e-9)
    return old == new


def assign(row: Any, **values: object) -> int:
    """Set ``values`` on ORM ``row`` where they differ; return 1 when anything changed, else 0.

    Raises
    ------
    RecordRejectedError
        When a value cannot fit its column.
    """
    table: sa.Table = row.__table__
    changed = 0
    for name, value in values.items():
        if isinstance(value, datetime):
            value = db_time(value)
        _check(table, name, value)
        if not _same(getattr(row, name), value):
            setattr(row, name, value)
            changed = 1
    return changed
