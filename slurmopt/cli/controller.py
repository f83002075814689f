"""``slurmopt controller``: re-place managed pending jobs, once (cron) or in a loop (systemd).

Exit codes: :class:`Exit` (also in docs/controller.md, with the test of each).
Every expected fault ends in one line on stderr and its code, never a traceback.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from enum import IntEnum
from pathlib import Path

import click

from slurmopt import config as config_mod
from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.cycle import CycleReport, env_path, run_cycle
from slurmopt.controller.journal import JournalError
from slurmopt.controller.lock import AlreadyRunning
from slurmopt.errors import (
    ConfigError,
    SlurmCommandError,
    SlurmoptError,
    SlurmParseError,
    SlurmUnavailable,
)
from slurmopt.slurm.backend import Backend

log = logging.getLogger("slurmopt.controller")


class Exit(IntEnum):
    """The controller's exit codes (docs/controller.md, "Exit codes")."""

    OK = 0
    """The cycle ran; everything it changed is confirmed and recorded."""
    CHANGES_FAILED = 1
    """The cycle ran, recorded; Slurm refused some changes (each recorded with Slurm's reason)."""
    CONFIG = 2
    """Invalid configuration: nothing done."""
    SLURM_UNAVAILABLE = 3
    """slurmctld did not answer the read: cycle skipped, nothing changed."""
    SLURM_COMMAND = 4
    """A Slurm command failed during the read: cycle skipped, nothing changed."""
    SLURM_PARSE = 5
    """Slurm answered something unreadable: cycle skipped, nothing changed."""
    DB_UNAVAILABLE = 8
    """History database locked, unreachable or not upgraded before any change: cycle
    skipped, nothing changed (an earlier cycle's journal is kept)."""
    JOURNAL = 9
    """The intent could not be recorded (journal unwritable): nothing applied."""
    RECORD_DEFERRED = 10
    """Changes applied and confirmed, but the database could not record them within its
    retry budget: the journal keeps the record, the next cycle writes it."""
    APPLY_INTERRUPTED = 11
    """slurmctld stopped answering while changes were sent: the rest were not sent, the
    unconfirmed ones are settled from Slurm's state by the next cycle."""
    LOCKED = 75
    """Another controller holds the lock: this run did nothing."""


_SKIPPED = {
    SlurmUnavailable: Exit.SLURM_UNAVAILABLE,
    SlurmCommandError: Exit.SLURM_COMMAND,
    SlurmParseError: Exit.SLURM_PARSE,
    ConfigError: Exit.CONFIG,
}


def exit_for_error(exc: SlurmoptError) -> tuple[Exit, str]:
    """The exit code and the one line for a cycle that raised ``exc``."""
    from slurmopt.history.db import DatabaseError

    text = " ".join(str(exc).split())
    if isinstance(exc, AlreadyRunning):
        return Exit.LOCKED, text
    if isinstance(exc, JournalError):
        return Exit.JOURNAL, f"nothing applied: {text}"
    if isinstance(exc, DatabaseError):
        return Exit.DB_UNAVAILABLE, f"cycle skipped, nothing changed: {text}"
    for kind, code in _SKIPPED.items():
        if isinstance(exc, kind):
            return code, f"cycle skipped, nothing changed: {text}"
    return Exit(exc.exit_code) if exc.exit_code in set(Exit) else Exit.CHANGES_FAILED, text


def exit_for_report(report: CycleReport) -> tuple[Exit, str | None]:
    """The exit code and the one line (None when all went well) for a cycle that ran."""
    if report.record_error:
        applied = report.applied + report.unconfirmed
        return Exit.RECORD_DEFERRED, (
            f"{applied} change(s) applied or unconfirmed but not recorded: "
            f"{report.record_error}; kept in the journal, the next cycle records them"
        )
    if report.error:
        return Exit.APPLY_INTERRUPTED, f"{report.error}; the next cycle reconciles them"
    if report.failed:
        return Exit.CHANGES_FAILED, f"{report.failed} change(s) refused by Slurm (recorded)"
    return Exit.OK, None


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


def _one(
    loaded: config_mod.Loaded,
    *,
    dry_run: bool,
    as_json: bool,
    no_history: bool,
    backend: Backend | None = None,
) -> int:
    """One cycle; prints the report (stdout) and at most one error line (stderr)."""
    from slurmopt import statecache
    from slurmopt.history.config import default_state_dir
    from slurmopt.history.controller_store import Store
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
                busy_timeout_s=hist.busy_timeout_s,
            )
        )
        report = run_cycle(
            backend or get_backend(),
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
    except SlurmoptError as exc:
        code, line = exit_for_error(exc)
        click.echo(f"slurmopt controller: {line}", err=True)
        return int(code)
    _print(report, as_json)
    code, err = exit_for_report(report)
    if err:
        click.echo(f"slurmopt controller: {err}", err=True)
    return int(code)


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
    if report.reconciled:
        click.echo(f"  reconciled {report.reconciled} change(s) of an earlier cycle from Slurm")
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
