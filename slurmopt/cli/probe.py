"""``slurmopt probe``: read this node's GPUs and host, print them, optionally push them."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import click

from slurmopt.errors import SlurmoptError
from slurmopt.model import JobState
from slurmopt.telemetry.config import load_telemetry_config
from slurmopt.telemetry.probe import ProbeResult, run_probe

log = logging.getLogger(__name__)


def extra_summary(probe: ProbeResult) -> str:
    """The compact JSON pushed into a node's ``Extra`` field.

    ``{"slurmopt": 1, "t": epoch, "ok": nvml_ok, "r": reason,
    "g": [[index, util %, mem used MiB, temp C, power W, job id, lost], ...]}``
    """
    gpus = [
        [
            g.index,
            g.util_sm_pct,
            g.memory_used_mb,
            g.temperature_c,
            None if g.power_w is None else round(g.power_w),
            g.job_id,
            int(g.lost),
        ]
        for g in probe.gpus
    ]
    data: dict[str, Any] = {"slurmopt": 1, "t": int(probe.taken_at), "ok": probe.nvml_ok, "g": gpus}
    if probe.gpu_reason:
        data["r"] = probe.gpu_reason[:80]
    return json.dumps(data, separators=(",", ":"))


def jobs_from_slurm() -> Any:
    """Running jobs from the backend, or None when Slurm cannot be read (logged)."""
    try:
        from slurmopt.slurm.backend import get_backend

        return get_backend().jobs(states=[JobState.RUNNING])
    except (SlurmoptError, ImportError) as exc:
        log.warning("Slurm jobs unavailable (%s): GPU holders from processes", exc)
        return None


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
@click.option("--push", is_flag=True, help="Store the sample (see --push-to).")
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
    push: bool,
    push_to: str | None,
    db_url: str | None,
    no_slurm: bool,
    deadline: float | None,
    xid_wait_ms: int | None,
) -> None:
    """Read this node's GPUs (NVML) and host (psutil). Exit 0 even without GPUs."""
    tcfg = load_telemetry_config()
    cfg = tcfg.probe()
    if deadline is not None:
        cfg = replace(cfg, nvml_deadline_s=deadline)
    if xid_wait_ms is not None:
        cfg = replace(cfg, xid_wait_ms=xid_wait_ms)
    push_to = push_to or tcfg.push_to
    jobs = None if no_slurm else jobs_from_slurm()
    result = run_probe(node, config=cfg, jobs=jobs)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        click.echo(_summary(result))
    if push:
        _push(result, push_to, db_url)


def _push(result: ProbeResult, push_to: str, db_url: str | None) -> None:
    if push_to == "slurm":
        from slurmopt.telemetry.nodectl import BackendNodeControl

        BackendNodeControl().set_extra(result.node, extra_summary(result))
        click.echo(f"pushed to Slurm: node {result.node} Extra", err=True)
        return
    from slurmopt.cli.db import engine_for
    from slurmopt.telemetry.store import HistoryStore, points_from_probe

    store = HistoryStore(engine_for(db_url))
    n = store.add_points(points_from_probe(result))
    click.echo(f"pushed {n} GPU sample(s) to the history database", err=True)
