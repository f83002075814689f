"""``slurmopt ingest spool|snapshot|sacct``: move observations into the history database."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from slurmopt.cli.db import DB_OPTION_HELP, engine_for, history_config, parse_when

log = logging.getLogger(__name__)


@click.group("ingest")
def ingest_group() -> None:
    """Record optsub's spool, snapshots, and final states from accounting."""


@ingest_group.command("spool")
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option("--spool", "spool_dir", type=click.Path(path_type=Path), help="Spool directory.")
@click.option(
    "--grace",
    type=float,
    default=60.0,
    show_default=True,
    help="Keep files modified less than this many seconds ago (they are re-read next time).",
)
def spool_cmd(url: str | None, spool_dir: Path | None, grace: float) -> None:
    """Ingest optsub's spool; files are removed only after the commit."""
    from slurmopt.history.db import require_schema
    from slurmopt.history.spool import ingest_spool

    engine = engine_for(url)
    require_schema(engine)
    spool = spool_dir or history_config().resolved_spool()
    stats = ingest_spool(engine, spool, grace_s=grace)
    click.echo(json.dumps({"spool": str(spool), **stats.to_dict()}, sort_keys=True))


@ingest_group.command("snapshot")
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option("--cluster", help="Cluster name (default: the snapshot's).")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def snapshot_cmd(url: str | None, cluster: str | None, files: tuple[Path, ...]) -> None:
    """Observe snapshot JSON files (``slurmopt snapshot --json``), oldest first."""
    from slurmopt.history.ingest import observe_snapshots
    from slurmopt.model import Snapshot

    snaps = []
    for f in files:
        try:
            snaps.append(Snapshot.from_dict(json.loads(f.read_text(encoding="utf-8"))))
        except (ValueError, OSError) as exc:
            raise click.ClickException(f"{f}: {exc}") from exc
    out = observe_snapshots(engine_for(url), snaps, cluster=cluster)
    click.echo(json.dumps(out))


@ingest_group.command("sacct")
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option("--since", required=True, help="Start of the window (epoch, ISO 8601, or -7d).")
@click.option("--until", help="End of the window.")
@click.option("--cluster", help="Cluster name the jobs were recorded under (default: any).")
@click.option(
    "--from-file",
    type=click.Path(exists=True, path_type=Path),
    help="Read saved `sacct --parsable2 --noheader` output (columns as slurmopt asks) instead.",
)
def sacct_cmd(
    url: str | None, since: str, until: str | None, cluster: str | None, from_file: Path | None
) -> None:
    """Fill final states from Slurm accounting (where slurmdbd exists)."""
    from slurmopt.history.sacct import ingest_accounting

    t0 = parse_when(since)
    assert t0 is not None
    text = None if from_file is None else from_file.read_text(encoding="utf-8")
    out = ingest_accounting(
        engine_for(url), since=t0, until=parse_when(until), cluster=cluster, text=text
    )
    if not out["accounting"]:
        click.echo("slurmopt: this cluster has no Slurm accounting: nothing to fill", err=True)
    click.echo(json.dumps(out, sort_keys=True))
