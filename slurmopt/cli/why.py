"""``slurmopt why JOBID``: why a job is where it is, in plain words."""

from __future__ import annotations

import json
import logging

import click

from slurmopt.cli.db import DB_OPTION_HELP, engine_for

log = logging.getLogger(__name__)


@click.command("why")
@click.argument("job_id", type=int)
@click.option("--db", "url", help=DB_OPTION_HELP)
@click.option(
    "--live/--no-live",
    default=True,
    show_default=True,
    help="Also ask Slurm for the job's current state and reason.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def why(job_id: int, url: str | None, live: bool, as_json: bool) -> None:
    """Explain a job: state, where it was placed and why, the candidates considered,
    predicted start and runtime, and the history of changes (or Slurm's own reason
    when slurmopt did not manage it). Exits 1 when nothing is known of the job."""
    from slurmopt.errors import SlurmoptError
    from slurmopt.history.db import require_schema, transaction
    from slurmopt.history.why import explain

    job = None
    if live:
        try:
            from slurmopt.slurm.backend import get_backend

            job = get_backend().job(job_id)
        except SlurmoptError as exc:
            click.echo(f"slurmopt: Slurm not asked ({exc}); from history only", err=True)
    engine = engine_for(url)
    require_schema(engine)
    with transaction(engine) as session:
        ex = explain(session, job_id, job)
    if as_json:
        click.echo(json.dumps({"job_id": job_id, "found": ex.found, **ex.data}, default=str))
    else:
        click.echo(ex.text, nl=False)
    if not ex.found:
        raise SystemExit(1)
