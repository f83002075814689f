"""``slurmopt controller``: re-place managed pending jobs, once (cron) or in a loop (systemd).

Exit codes (also in docs/controller.md):

* 0  the cycle ran (in observe / advise mode or with --dry-run nothing changed in Slurm);
* 1  the cycle ran but some changes failed or were not applied;
* 2  invalid configuration;
* 3  slurmctld unreachable: the cycle was skipped, nothing changed;
* 4, 5  a Slurm command failed / answered something unreadable: cycle skipped;
* 8  the history database is unreachable or not upgraded: cycle skipped;
* 75 another controller holds the lock: this run did nothing.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

import click

from slurmopt import config as config_mod
from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.cycle import CycleReport, Store, env_path, run_cycle
from slurmopt.controller.lock import AlreadyRunning
from slurmopt.errors import SlurmoptError

log = logging.getLogger("slurmopt.controller")


@click.command("controller")
@click.option("--once", "once", is_flag=True, help="Run one cycle and exit (for cron).")
@click.option("--loop", "loop", is_flag=True, help="Run a cycle every --interval seconds.")
@click.option("--interval", type=click.IntRange(min=1), help="Seconds between cycles (--loop).")
@click.option(
    "--mode",
    type=click.Choice(["observe", "advise", "enforce"]),
    help="Override [controller] mode (a fresh install observes).",
)
@click.option("--dry-run", is_flag=True, help="Decide and record, but change nothing in Slurm.")
@click.option("--json", "as_json", is_flag=True, help="Print the cycle report as JSON on stdout.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Extra config file.")
@click.option("--no-history", is_flag=True, help="Do not use the history database (testing).")
def controller(
    once: bool,
    loop: bool,
    interval: int | None,
    mode: str | None,
    dry_run: bool,
    as_json: bool,
    config_file: Path | None,
    no_history: bool,
) -> None:
    """Re-place managed pending jobs within their allowed partitions, under guardrails."""
    if once == loop:
        raise click.UsageError("give exactly one of --once or --loop")
    overrides: dict[str, object] = {}
    if mode:
        overrides["controller.mode"] = mode
    if interval:
        overrides["controller.interval_s"] = interval
    loaded = config_mod.load(overrides=overrides, explicit=[config_file] if config_file else [])
    cfg: ControllerConfig = loaded["controller"]
    if cfg.syslog:
        handler = logging.handlers.SysLogHandler(address="/dev/log")
        handler.setFormatter(logging.Formatter("slurmopt-controller: %(message)s"))
        logging.getLogger("slurmopt").addHandler(handler)
    if once:
        sys.exit(_one(loaded, dry_run=dry_run, as_json=as_json, no_history=no_history))
    while True:  # --loop: errors of one cycle never end the service
        started = time.monotonic()
        _one(loaded, dry_run=dry_run, as_json=as_json, no_history=no_history)
        time.sleep(max(0.0, cfg.interval_s - (time.monotonic() - started)))


def _one(loaded: config_mod.Loaded, *, dry_run: bool, as_json: bool, no_history: bool) -> int:
    from slurmopt import statecache
    from slurmopt.history.config import default_state_dir
    from slurmopt.slurm.backend import get_backend

    cfg: ControllerConfig = loaded["controller"]
    state = default_state_dir()
    hist = loaded["history"]
    try:
        store = (
            None
            if no_history
            else Store(
                hist.resolved_url(),
                hist.resolved_spool(),
                predictions=hist.use_predictions,
                learned_speeds=hist.use_learned_speeds,
            )
        )
        report = run_cycle(
            get_backend(),
            cfg,
            loaded["optimize"],
            store=store,
            dry_run=dry_run,
            lock_path=env_path(cfg.lock_file, state / "controller.lock"),
            cache_path=env_path(cfg.state_cache, statecache.default_cache_path()),
            routing_path=env_path(
                cfg.routing_file,
                Path(os.environ.get("SLURMOPT_ROUTING_FILE") or state / "routing.txt"),
            ),
        )
    except AlreadyRunning as exc:
        click.echo(f"slurmopt controller: {exc}", err=True)
        return exc.exit_code
    except SlurmoptError as exc:
        click.echo(f"slurmopt controller: cycle skipped, nothing changed: {exc}", err=True)
        return exc.exit_code
    _print(report, as_json)
    return 1 if report.error or report.failed else 0


def _print(report: CycleReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    what = {"observe": "would move", "advise": "advises moving", "enforce": "moved"}[report.mode]
    if report.dry_run or report.kill_switch:
        what = "would move"
    click.echo(
        f"controller cycle ({report.mode}{', dry run' if report.dry_run else ''}"
        f"{', KILL SWITCH' if report.kill_switch else ''}): {report.jobs_seen} jobs, "
        f"{report.pending} pending, {report.managed} managed, {report.proposals} proposed, "
        f"{report.accepted} accepted, {report.applied} applied in {report.wall_s:.2f} s "
        f"(read {report.read_s:.2f}, solve {report.solve_s:.2f}, apply {report.apply_s:.2f})"
    )
    for j in report.jobs:
        if j.change != "move":
            click.echo(f"  job {j.job_id}: {j.change} {j.value}: {j.outcome}: {j.reason}")
            continue
        mark = what if j.accepted else "keeps"
        click.echo(
            f"  job {j.job_id}: {mark} {','.join(j.from_partitions)} -> {j.to_partition}"
            f"{f' (gpu {j.gpu_type})' if j.gpu_type else ''}: {j.outcome}: {j.reason}"
        )
    if report.accepted:
        click.echo(f"  total expected gain: {report.total_gain_s / 3600:.2f} job-hours")
    if report.error:
        click.echo(f"  error: {report.error}", err=True)
