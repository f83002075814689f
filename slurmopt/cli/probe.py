"""``slurmopt probe``: read this node's GPUs and host, print them, optionally push them."""

from __future__ import annotations

import json

import click

from slurmopt.telemetry.config import load_telemetry_config
from slurmopt.telemetry.probe import ProbeResult
from slurmopt.telemetry.push import ProbeOptions, probe_node, push


def _summary(probe: ProbeResult) -> str:
    lines = [f"node {probe.node}: {len(probe.gpus)} GPU(s), driver {probe.driver_version}"]
    if probe.gpu_reason:
        lines.append(f"  note: {probe.gpu_reason}")
    for g in probe.gpus:
        state = "LOST" if g.lost else f"{g.util_sm_pct}% {g.memory_used_mb}/{g.memory_total_mb} MiB"
        lines.append(
            f"  GPU{g.index} {g.name} {state} {g.temperature_c}C {g.power_w}W"
            f" job={g.job_id} errors={len(g.errors)}"
        )
    if probe.host is not None:
        h = probe.host
        lines.append(f"  host cpu {h.cpu_percent}% load {h.load_1m:.2f} mem {h.memory_percent}%")
    return "\n".join(lines)


@click.command("probe")
@click.option("--json", "as_json", is_flag=True, help="Print the probe as JSON (stable schema).")
@click.option("--node", help="This node's Slurm name (default: the short host name).")
@click.option("--push", "push_", is_flag=True, help="Store the sample (see --push-to).")
@click.option(
    "--push-to",
    type=click.Choice(["db", "slurm"]),
    help="db: the history database; slurm: the node's Extra field (scontrol update) "
    "(default: [telemetry] push_to, db).",
)
@click.option("--db", "db_url", help="History database URL (default: config, $SLURMOPT_DB_URL).")
@click.option(
    "--no-slurm",
    is_flag=True,
    help="Do not ask Slurm which job holds each GPU (use the GPU processes).",
)
@click.option(
    "--deadline", type=float, help="Watchdog: seconds for all NVML calls (default: config, 10)."
)
@click.option(
    "--xid-wait-ms", type=int, help="How long to listen for XID events (default: config, 200)."
)
def probe(
    as_json: bool,
    node: str | None,
    push_: bool,
    push_to: str | None,
    db_url: str | None,
    no_slurm: bool,
    deadline: float | None,
    xid_wait_ms: int | None,
) -> None:
    """Read this node's GPUs (NVML) and host (psutil). Exit 0 even without GPUs."""
    result = probe_node(
        ProbeOptions(
            node=node, use_slurm=not no_slurm, deadline_s=deadline, xid_wait_ms=xid_wait_ms
        )
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        click.echo(_summary(result))
    if push_:
        click.echo(push(result, push_to or load_telemetry_config().push_to, db_url), err=True)
