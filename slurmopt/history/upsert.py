"""Idempotent inserts on natural keys (``INSERT ... ON CONFLICT DO NOTHING``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

MAX_PARAMS = 30_000
"""Bound parameters per statement (SQLite allows 32,766; PostgreSQL 65,535)."""


def table_of(model: Any) -> Table:
    """The :class:`~sqlalchemy.Table` of an ORM class."""
    t = model.__table__
    assert isinstance(t, Table)
    return t


def _dialect_insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        return insert
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    return None


def insert_ignore(
    session: Session, table: Table, values: Mapping[str, Any], keys: Sequence[str]
) -> bool:
    """Insert a row unless one with the same unique ``keys`` exists. True if inserted.

    Uses ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL (safe
    against concurrent writers); other dialects check first.
    """
    return insert_ignore_many(session, table, [values], keys) == 1


def _chunks(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[Sequence[Mapping[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def insert_ignore_bulk(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Like :func:`insert_ignore_many` for many rows, without counting them.

    One statement compiled once and run with the driver's ``executemany``:
    much faster than a multi-row VALUES list for thousands of rows.
    """
    if not rows:
        return
    d_insert = _dialect_insert(session)
    if d_insert is None:
        insert_ignore_many(session, table, rows, keys)
        return
    stmt = d_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt, [dict(r) for r in rows])


def insert_ignore_many(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> int:
    """Insert every row whose unique ``keys`` are new; return how many were inserted.

    All rows must have the same columns. For thousands of rows where the count
    does not matter, :func:`insert_ignore_bulk` is faster.
    """
    if not rows:
        return 0
    d_insert = _dialect_insert(session)
    if d_insert is None:
        n = 0
        for values in rows:
            cond = [table.c[k] == values[k] for k in keys]
            if session.execute(select(table.c[keys[0]]).where(*cond)).first() is None:
                session.execute(table.insert().values(**values))
                n += 1
        return n
    size = max(1, MAX_PARAMS // max(1, len(rows[0])))
    n = 0
    for chunk in _chunks(rows, size):
        stmt = (
            d_insert(table)
            .values(list(chunk))
            .on_conflict_do_nothing(index_elements=list(keys))
            .returning(*table.primary_key.columns)
        )
        # rowcount is -1 with RETURNING on psycopg: count the returned rows instead.
        n += len(session.execute(stmt).all())
    return n
