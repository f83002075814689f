"""``slurmopt db upgrade|current|prune|export``: the history database's upkeep."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from slurmopt.history.config import HistoryConfig

DB_OPTION_HELP = "SQLAlchemy URL of the history database (default: config, $SLURMOPT_DB_URL)."


def history_config() -> HistoryConfig:
    """The ``[history]`` section (:func:`slurmopt.history.config.configured`)."""
    from slurmopt.history.config import configured

    return configured()


def engine_for(url: str | None, *, create: bool = False) -> Any:
    """An engine for ``url`` or the configured database (:func:`slurmopt.history.db.engine_for`)."""
    from slurmopt.history.db import engine_for as make

    return make(url, create=create)


def parse_when(text: str | None) -> int | None:
    """Epoch seconds from ``text``: an integer, an ISO date/time, or ``-7d`` / ``-12h``."""
    if text is None:
        return None
    import time
    from datetime import datetime

    t = text.strip()
    if t.lstrip("-").isdigit() and not t.startswith("-"):
        return int(t)
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if t.startswith("-") and t[-1] in units and t[1:-1].isdigit():
        return int(time.time()) - int(t[1:-1]) * units[t[-1]]
    try:
        return int(datetime.fromisoformat(t).timestamp())
    except ValueError:
        raise click.BadParameter(f"{text!r}: use epoch seconds, ISO 8601, or -7d / -12h") from None


@click.group("db")
def db_group() -> None:
    """Create, upgrade, prune and export the history database."""


@db_group.command("upgrade")
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade_cmd(url: str | None, revision: str) -> None:
    """Create the database or upgrade it to the newest schema."""
    from slurmopt.history import db

    engine = engine_for(url, create=True)
    before = db.current_revision(engine)
    db.upgrade(engine, revision)
    after = db.current_revision(engine)
    click.echo(json.dumps({"url": _safe(engine.url), "from": before, "to": after}))


@db_group.command("current")
@click.option("--db", "url", help=DB_OPTION_HELP)
def current_cmd(url: str | None) -> None:
    """Print the database's schema revision and the newest one this slurmopt ships."""
    from slurmopt.history import db

    engine = engine_for(url)
    out = {
        "url": _safe(engine.url),
        "current": db.current_revision(engine),
        "head": db.head_revision(),
    }
    click.echo(json.dumps(out))


@db_group.command("prune")
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option(
    "--older-than", "days", type=click.FloatRange(min=0), required=True, help="Age in days."
)
def prune_cmd(url: str | None, days: float) -> None:
    """Delete records older than DAYS (jobs still in the queue are kept)."""
    from slurmopt.history import db

    engine = engine_for(url)
    db.require_schema(engine)
    counts = db.prune(engine, int(days * 86400))
    click.echo(json.dumps({"deleted": counts}, sort_keys=True))


@db_group.command("export")
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option("--table", "tables", multiple=True, help="Table(s) to export (default: all).")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option("--since", help="Only rows from this time (epoch, ISO 8601, or -7d).")
@click.option("--until", help="Only rows before this time.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File to write (default: stdout)."
)
def export_cmd(
    url: str | None,
    tables: tuple[str, ...],
    fmt: str,
    since: str | None,
    until: str | None,
    output: Path | None,
) -> None:
    """Export tables as JSON (all in one document) or CSV (one table)."""
    from slurmopt.history import db
    from slurmopt.history.orm import TIME_COLUMN, Base

    engine = engine_for(url)
    db.require_schema(engine)
    names = list(tables) or [*sorted(TIME_COLUMN), "job_events"]
    unknown = [n for n in names if n not in Base.metadata.tables]
    if unknown:
        raise click.BadParameter(f"unknown table(s): {', '.join(unknown)}", param_hint="--table")
    if fmt == "csv" and len(names) != 1:
        raise click.BadParameter("CSV export takes exactly one --table", param_hint="--table")
    text = db.export(engine, names, fmt, since=parse_when(since), until=parse_when(until))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _safe(url: Any) -> str:
    return str(url.render_as_string(hide_password=True))
