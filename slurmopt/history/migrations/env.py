"""Alembic environment for slurmopt's history database (programmatic use only).

:func:`slurmopt.history.db.upgrade` passes an open connection in
``config.attributes["connection"]``; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from slurmopt.history.orm import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Run the migrations on the connection given by the caller (or a URL, for tooling)."""
    conn = config.attributes.get("connection")
    if conn is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("slurmopt migrations need a connection or sqlalchemy.url")
        with create_engine(url).begin() as c:
            _migrate(c)
        return
    _migrate(conn)


def _migrate(conn: object) -> None:
    context.configure(
        connection=conn,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
