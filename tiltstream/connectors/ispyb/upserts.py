"""Flushing a batch's changed per-tilt rows as multi-row upserts, one statement per table.

The ORM would send one ``UPDATE`` per changed row (PyMySQL runs an ``executemany`` of ``UPDATE`` row by
row). :func:`flush_rows` writes the changed Movie, MotionCorrection, CTF and TiltImageAlignment rows of the
session instead as ``INSERT ... VALUES (...), (...) ON DUPLICATE KEY UPDATE`` (MariaDB/MySQL) or
``INSERT ... ON CONFLICT (key) DO UPDATE`` (PostgreSQL, SQLite) keyed by the primary key: every row
exists already, so each is updated, with every present column in the ``INSERT`` half (strict mode checks
it too). The rows are then marked clean, and the session's own flush writes whatever else changed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie, TiltImageAlignment
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value

__all__ = ["BULK_MODELS", "flush_rows"]

#: The tables whose changed rows go out as one upsert per batch.
BULK_MODELS: tuple[type[Any], ...] = (Movie, MotionCorrection, CTF, TiltImageAlignment)


def flush_rows(session: Session) -> None:
    """Write the session's changed rows of :data:`BULK_MODELS` as one upsert per table, then flush."""
    changed: dict[type[Any], list[Any]] = {}
    for row in session.dirty:
        if type(row) in BULK_MODELS and session.is_modified(row):
            changed.setdefault(type(row), []).append(row)
    for model, rows in changed.items():
        _upsert(session, model, rows)
    session.flush()


def _upsert(session: Session, model: type[Any], rows: list[Any]) -> None:
    table: sa.Table = model.__table__
    mapper = sa.inspect(model)
    unloaded = sa.inspect(rows[0]).unloaded  # the columns this schema version lacks
    attributes = {c.key: mapper.get_property_by_column(c).key for c in table.columns}
    loaded = [c for c in table.columns if attributes[c.key] not in unloaded]
    updated: set[str] = set()
    for row in rows:
        updated.update(instance_state(row).committed_state)  # the attributes set since loaded
    values = [{c.key: getattr(row, attributes[c.key]) for c in loaded} for row in rows]
    statement = _statement(session, table, [c for c in loaded if attributes[c.key] in updated])
    session.execute(statement, values)
    for row in rows:
        for key in updated:
            set_committed_value(row, key, getattr(row, key))


def _statement(session: Session, table: sa.Table, updated: list[sa.Column[Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    keys = list(table.primary_key.columns)
    if dialect in ("mysql", "mariadb"):
        mine = mysql.insert(table)
        return mine.on_duplicate_key_update({c.name: mine.inserted[c.name] for c in updated})
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return insert.on_conflict_do_update(
        index_elements=keys, set_={c.name: insert.excluded[c.name] for c in updated}
    )
