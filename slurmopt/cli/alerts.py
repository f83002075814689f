"""``slurmopt alerts``: evaluate alert rules and anomaly detection, notify, record.

Run it from cron / a systemd timer: on a compute node with ``--probe`` (GPU,
ECC, lost-GPU and foreign-process rules), on the controller host with
``--queue`` (partition wait, node state) and ``--from-db`` (GPU samples pushed
by every node's ``slurmopt probe --push``). Each run adds its observations to
the state file's rolling series, evaluates the rules and sends only what
changed (new alerts, recoveries). Exit 0, or 12 when a channel failed.
"""

from __future__ import annotations

import json

import click


@click.command("alerts")
@click.option("--probe", "do_probe", is_flag=True, help="Probe this node and watch its GPUs.")
@click.option("--node", help="This node's Slurm name for --probe (default: host name).")
@click.option(
    "--probe-file",
    "probe_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Add a probe result (JSON of `slurmopt probe --json`); repeatable.",
)
@click.option("--queue", is_flag=True, help="Read Slurm: partition waits and node states.")
@click.option("--from-db", is_flag=True, help="Add GPU samples from the history database.")
@click.option("--db", "db_url", help="History database URL (default: config, $SLURMOPT_DB_URL).")
@click.option("--no-record", is_flag=True, help="Do not record alerts in the history database.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    help="Series and open alerts (default: <state dir>/alerts-state.json).",
)
@click.option("--webhook", "webhooks", multiple=True, help="POST events as JSON to this URL.")
@click.option("--email-to", "email_to", multiple=True, help="Email events to this address.")
@click.option("--email-from", help="Sender (default: [telemetry] email_from).")
@click.option("--smtp", help="SMTP HOST:PORT (default: [telemetry] smtp, 127.0.0.1:25).")
@click.option("--idle-minutes", type=int, help="gpu_idle window (default: config, 30).")
@click.option("--idle-util", type=float, help="gpu_idle: mean SM %% limit (default: config, 5).")
@click.option("--max-temp", type=float, help="temperature alert limit (default: config, 85).")
@click.option("--wait-p90-hours", type=float, help="p90 wait limit (default: config, 4).")
@click.option(
    "--kill-foreign",
    is_flag=True,
    help="SIGTERM GPU processes outside their Slurm allocation (site opt-in).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON lines.")
@click.option("--now", "now_opt", type=int, help="Evaluate at this epoch time (replays, tests).")
def alerts(  # noqa: PLR0913  Click passes one argument per option; they become AlertsOptions at once
    do_probe: bool,
    node: str | None,
    probe_files: tuple[str, ...],
    queue: bool,
    from_db: bool,
    db_url: str | None,
    no_record: bool,
    state_file: str | None,
    webhooks: tuple[str, ...],
    email_to: tuple[str, ...],
    email_from: str | None,
    smtp: str | None,
    idle_minutes: int | None,
    idle_util: float | None,
    max_temp: float | None,
    wait_p90_hours: float | None,
    kill_foreign: bool,
    as_json: bool,
    now_opt: int | None,
) -> None:
    """Evaluate alert rules over probes, queue state and history; notify what changed."""
    from slurmopt.telemetry.runalerts import EXIT_CHANNEL_FAILED, AlertsOptions, run_alerts

    out = run_alerts(
        AlertsOptions(
            probe=do_probe,
            node=node,
            probe_files=probe_files,
            queue=queue,
            from_db=from_db,
            db_url=db_url,
            record=not no_record,
            state_file=state_file,
            webhooks=webhooks,
            email_to=email_to,
            email_from=email_from,
            smtp=smtp,
            idle_minutes=idle_minutes,
            idle_util=idle_util,
            max_temp=max_temp,
            wait_p90_hours=wait_p90_hours,
            kill_foreign=kill_foreign,
            now=now_opt,
        )
    )
    for e in out.events:
        if as_json:
            click.echo(json.dumps(e.to_dict()))
        else:
            click.echo(f"{e.status:8} {e.severity:8} {e.rule:22} {e.subject}: {e.message}")
    if out.channel_failed:
        click.get_current_context().exit(EXIT_CHANNEL_FAILED)
