"""``slurmopt health``: Slurm's HealthCheckProgram. Drains a faulty node, resumes it when healthy.

Exit codes: 0 healthy, 8 unhealthy (drained, would be drained with --dry-run,
or drained by someone else and left alone), 9 healthy but the node's Slurm
state could not be read (nothing changed), 10 the run's time bound passed;
errors keep slurmopt's codes (2 config, 3 Slurm unreachable, 4 Slurm command
failed). See docs/telemetry.md.
"""

from __future__ import annotations

import json

import click

from slurmopt.telemetry.health import DEFAULT_CRITICAL_XIDS


@click.command("health")
@click.option(
    "--node", help="Slurm node to check and act on (default: $SLURMD_NODENAME, else the host name)."
)
@click.option(
    "--probe-file",
    type=click.Path(dir_okay=False),
    help="Read the probe (JSON of `slurmopt probe --json`) instead of probing.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    help="ECC baselines and latches (default: <state dir>/health-state.json).",
)
@click.option(
    "--gres-conf",
    help="gres.conf for the expected GPU count when Slurm does not say "
    "(default: [telemetry] gres_conf, /etc/slurm/gres.conf; '' to skip).",
)
@click.option("--expected-gpus", type=int, help="Override the expected GPU count.")
@click.option(
    "--max-temp",
    type=int,
    help="Temperature limit in C (0: no limit; default: [telemetry] max_temperature_c, 90).",
)
@click.option(
    "--critical-xid",
    "critical_xids",
    type=int,
    multiple=True,
    help="Critical XID (repeatable; default: "
    + ",".join(map(str, sorted(DEFAULT_CRITICAL_XIDS)))
    + ").",
)
@click.option("--no-slurm", is_flag=True, help="Evaluate only: do not read or change Slurm.")
@click.option(
    "--clear-latches",
    "clear",
    is_flag=True,
    help="Forget latched ECC / XID faults (after a GPU was repaired), then check.",
)
@click.option(
    "--timeout",
    type=float,
    help="Overall bound of the run in seconds (default: [telemetry] health_timeout_s, 60).",
)
def health(  # noqa: PLR0913  Click passes one argument per option
    node: str | None,
    probe_file: str | None,
    dry_run: bool,
    as_json: bool,
    state_file: str | None,
    gres_conf: str | None,
    expected_gpus: int | None,
    max_temp: int | None,
    critical_xids: tuple[int, ...],
    no_slurm: bool,
    clear: bool,
    timeout: float | None,
) -> None:
    """Check this node's GPUs; drain it on a fault, resume it when slurmopt drained it."""
    from slurmopt.telemetry.healthcheck import HealthOptions, check_node

    done = check_node(
        HealthOptions(
            node=node,
            probe_file=probe_file,
            dry_run=dry_run,
            state_file=state_file,
            gres_conf=gres_conf,
            expected_gpus=expected_gpus,
            max_temp=max_temp,
            critical_xids=critical_xids,
            use_slurm=not no_slurm,
            clear_latches=clear,
            timeout_s=timeout,
        )
    )
    name, report = done.node, done.report
    if done.cleared is not None:
        click.echo(f"cleared {done.cleared} latched fault(s)", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
    else:
        verb = "would" if dry_run else ("did" if report.applied else "will not")
        status = "healthy" if report.verdict.healthy else "UNHEALTHY"
        click.echo(f"{name}: {status}")
        for f in report.verdict.findings:
            click.echo(f"  {f.rule}: {f.message}")
        if report.decision.action.value != "none":
            click.echo(f"  {verb} {report.decision.action.value}: {report.decision.reason}")
        else:
            click.echo(f"  no change: {report.decision.reason}")
        if report.error:
            click.echo(f"  note: {report.error}", err=True)
    click.get_current_context().exit(report.exit_code)
