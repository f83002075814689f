"""``slurmopt report KIND``: summary, partitions, users, jobs, decisions, predictions, gpu,
refusals."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from slurmopt.cli.db import DB_OPTION_HELP, engine_for, parse_when

KINDS = ("summary", "partitions", "users", "jobs", "decisions", "predictions", "gpu", "refusals")


def _configured_speeds() -> dict[str, float]:
    from slurmopt import config
    from slurmopt.optimize.config import OptimizeConfig

    cfg = config.load()["optimize"] if "optimize" in config.SECTIONS else OptimizeConfig()
    return {str(k): float(v) for k, v in cfg.gpu_speed.items()}


@click.command("report")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option("--since", help="Start of the window (epoch, ISO 8601, or -7d / -12h).")
@click.option("--until", help="End of the window.")
@click.option("--user", help="Only this user's jobs.")
@click.option("--partition", help="Only this partition.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File to write (default: stdout)."
)
def report(
    kind: str,
    url: str | None,
    since: str | None,
    until: str | None,
    user: str | None,
    partition: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Print a report from the history database.

    HTML is one self-contained file with its charts embedded (no network needed).
    """
    from slurmopt.history import reports
    from slurmopt.history.db import require_schema, transaction
    from slurmopt.history.render import render

    f = reports.Filters(parse_when(since), parse_when(until), user, partition)
    engine = engine_for(url)
    require_schema(engine)
    options: dict[str, Any] = {}
    if kind == "predictions":
        options["configured_speeds"] = _configured_speeds()
    with transaction(engine) as session:
        rep = reports.build(session, kind, f, **options)
    text = render(rep, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
