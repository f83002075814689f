"""Engines, sessions, migrations, prune and export for the history database.

SQLite is the default (one file; WAL journal so readers never block the
writer; a busy timeout so concurrent writers wait instead of failing; write
transactions start with ``BEGIN IMMEDIATE`` so two writers cannot deadlock on a
lock upgrade). Any SQLAlchemy URL works (PostgreSQL is tested).

The schema is owned by the Alembic revisions shipped in
``slurmopt/history/migrations``; :func:`upgrade` runs them with a programmatic
configuration (no ``alembic.ini``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, create_engine, delete, event, select
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from slurmopt.errors import ConfigError, SlurmoptError
from slurmopt.history.orm import TIME_COLUMN, Base
from slurmopt.retry import retry

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_T = TypeVar("_T")


class DatabaseError(SlurmoptError):
    """The history database is unreachable, locked for too long, or not upgraded."""

    exit_code = 8


def engine_for(url: str | None = None, *, create: bool = False) -> Engine:
    """An engine for ``url``, else the configured database (``[history]``, ``$SLURMOPT_DB_URL``).

    ``create``: a missing SQLite file may be created (``slurmopt db upgrade`` only;
    every other command refuses a missing file instead of leaving an empty one).

    Raises:
        ConfigError: an invalid configuration file or database URL.
        DatabaseError: the SQLite file does not exist (and ``create`` is false).
    """
    from slurmopt.history.config import configured

    cfg = configured()
    return make_engine(url or cfg.resolved_url(), busy_timeout_s=cfg.busy_timeout_s, create=create)


def _url_or_error(url: str) -> URL:
    """The parsed URL, with a loadable dialect.

    Raises:
        ConfigError: not an SQLAlchemy URL, or a database kind / driver not installed.
    """
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = url.split("://", 1)[0] + "://..." if "://" in url else repr(url[:40])
    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"invalid database URL {shown}: expected e.g. sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None
    try:
        u.get_dialect()
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"invalid database URL {u.render_as_string(hide_password=True)}: "
            f"unknown database kind or driver not installed ({exc})"
        ) from None
    return u


def make_engine(
    url: str, *, busy_timeout_s: float = 30.0, echo: bool = False, create: bool = True
) -> Engine:
    """Create an engine; for SQLite, create the file's folder and set WAL + busy timeout.

    Args:
        url: any SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``).
        busy_timeout_s: SQLite: how long a writer waits for another one's lock.
        echo: log every statement.
        create: SQLite: a missing file may be created (else :class:`DatabaseError`).

    Raises:
        ConfigError: not a usable database URL.
        DatabaseError: the SQLite file does not exist and ``create`` is false.
    """
    u = _url_or_error(url)
    if u.get_backend_name() != "sqlite":
        try:
            return create_engine(u, echo=echo, pool_pre_ping=True)
        except ImportError as exc:
            raise ConfigError(
                f"database URL {u.render_as_string(hide_password=True)}: "
                f"its driver is not installed ({exc})"
            ) from None
    if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
        path = Path(u.database).expanduser()
        if not create and not path.exists():
            raise DatabaseError(
                f"history database {path} does not exist (create it: slurmopt db upgrade)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        poolclass=NullPool,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )
    ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event start transactions (pysqlite's own is too lazy).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={ms}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` (objects stay readable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One session in one transaction: commit on success, roll back on error."""
    with session_factory(engine)() as session, session.begin():
        yield session


def with_retry(
    engine: Engine,
    work: Callable[[Session], _T],
    *,
    attempts: int = 5,
    backoff_s: float = 0.2,
) -> _T:
    """Run ``work`` in a transaction, retrying when the database is locked or unreachable.

    Raises:
        DatabaseError: still failing after ``attempts`` tries (nothing was committed).
    """

    def once(_attempt: int) -> _T:
        with transaction(engine) as session:
            return work(session)

    def note(attempt: int, exc: Exception) -> None:
        orig = getattr(exc, "orig", exc)
        log.warning(
            "history database busy or unreachable (try %d/%d): %s",
            attempt,
            attempts,
            str(orig)[:200],
        )

    try:
        return retry(
            once,
            transient=lambda e: isinstance(e, OperationalError),
            attempts=attempts,
            first_pause_s=backoff_s,
            on_retry=note,
        )
    except OperationalError as exc:
        raise DatabaseError(f"history database unavailable: {exc}") from exc


# -- migrations ------------------------------------------------------------------


def alembic_config(engine: Engine | None = None, connection: Connection | None = None) -> Any:
    """A programmatic Alembic configuration for the shipped revisions."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``.

    Raises:
        DatabaseError: the database cannot be reached.
    """
    from alembic import command

    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), revision)
    except OperationalError as exc:
        raise DatabaseError(f"cannot upgrade the history database: {exc.orig}") from exc


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``base`` drops every table)."""
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: not created)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest shipped revision."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def revisions() -> list[str]:
    """Every shipped revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def require_schema(engine: Engine) -> None:
    """Check the database is at the head revision.

    Raises:
        DatabaseError: not created or older than this slurmopt (run ``slurmopt db upgrade``).
    """
    try:
        rev = current_revision(engine)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open the history database: {exc.orig}") from exc
    if rev != head_revision():
        raise DatabaseError(
            f"history database is at revision {rev or 'none'}, this slurmopt needs "
            f"{head_revision()}: run `slurmopt db upgrade`"
        )


# -- prune and export ------------------------------------------------------------


def table(name: str) -> Table:
    """The table called ``name``.

    Raises:
        KeyError: no such table.
    """
    return Base.metadata.tables[name]


def prune(engine: Engine, older_than_s: int, *, now: int | None = None) -> dict[str, int]:
    """Delete rows older than ``older_than_s`` seconds; return rows deleted per table.

    Jobs still in the queue (``left_at`` unset) are kept whatever their age.
    """
    cutoff = int(time.time() if now is None else now) - older_than_s
    counts: dict[str, int] = {}
    with transaction(engine) as session:
        for name, col in TIME_COLUMN.items():
            t = table(name)
            cond = t.c[col] < cutoff
            if name == "jobs":
                cond = cond & t.c.left_at.is_not(None)
            res = session.execute(delete(t).where(cond))
            counts[name] = int(getattr(res, "rowcount", 0) or 0)
    log.info("pruned rows older than %d: %s", cutoff, counts)
    return counts


def rows(
    engine: Engine, name: str, *, since: int | None = None, until: int | None = None
) -> list[dict[str, Any]]:
    """All rows of one table as dicts (optionally within a time window), in key order."""
    t = table(name)
    q = select(t).order_by(*t.primary_key.columns)
    col = TIME_COLUMN.get(name)
    if col and since is not None:
        q = q.where(t.c[col] >= since)
    if col and until is not None:
        q = q.where(t.c[col] < until)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def export(
    engine: Engine,
    tables: Sequence[str],
    fmt: str,
    *,
    since: int | None = None,
    until: int | None = None,
) -> str:
    """Export tables as JSON (``{"table": [rows]}``) or CSV (one table only).

    Raises:
        ValueError: unknown format, or CSV asked for several tables.
    """
    if fmt == "json":
        data = {n: rows(engine, n, since=since, until=until) for n in tables}
        return json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r} (csv or json)")
    if len(tables) != 1:
        raise ValueError("CSV export takes exactly one table")
    cols = [c.name for c in table(tables[0]).columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows(engine, tables[0], since=since, until=until):
        w.writerow({k: _csv_value(v) for k, v in r.items()})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, Mapping | list):
        return json.dumps(v, sort_keys=True)
    return v
