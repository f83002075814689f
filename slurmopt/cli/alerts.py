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
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from slurmopt.errors import ConfigError, SlurmoptError

log = logging.getLogger(__name__)

EXIT_CHANNEL_FAILED = 12


def _default_state() -> Path:
    from slurmopt.history.config import default_state_dir

    return default_state_dir() / "alerts-state.json"


def _store(db_url: str | None, wanted: bool) -> Any:
    if not wanted:
        return None
    from slurmopt.cli.db import engine_for
    from slurmopt.telemetry.store import HistoryStore

    try:
        return HistoryStore(engine_for(db_url))
    except SlurmoptError as exc:
        log.warning("history database unavailable (alerts not recorded): %s", exc)
        return None


def _read_probe(path: str, cls: Any) -> Any:
    try:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--probe-file {path}: {exc}") from exc


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
def alerts(
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
    from slurmopt.telemetry import security, series
    from slurmopt.telemetry.alerts import AlertEngine
    from slurmopt.telemetry.channels import (
        Channel,
        Dispatcher,
        EmailChannel,
        LogChannel,
        WebhookChannel,
    )
    from slurmopt.telemetry.config import load_telemetry_config
    from slurmopt.telemetry.probe import ProbeResult, run_probe
    from slurmopt.telemetry.runhealth import load_state, save_state

    tcfg = load_telemetry_config()
    cfg = tcfg.alerts()
    cfg = replace(
        cfg,
        gpu_idle_window_s=cfg.gpu_idle_window_s if idle_minutes is None else idle_minutes * 60,
        gpu_idle_util_pct=cfg.gpu_idle_util_pct if idle_util is None else idle_util,
        temperature_c=cfg.temperature_c if max_temp is None else max_temp,
        wait_p90_s=cfg.wait_p90_s if wait_p90_hours is None else wait_p90_hours * 3600,
    )
    sec = tcfg.security()
    if kill_foreign:
        sec = replace(sec, kill=True)
    webhooks = webhooks or tcfg.webhooks
    email_to = email_to or tcfg.email_to
    email_from = email_from or tcfg.email_from
    smtp = smtp or tcfg.smtp
    state_file = state_file or tcfg.alert_state_file
    path = Path(state_file) if state_file else _default_state()
    state = load_state(path)
    engine = AlertEngine(cfg, state)
    store = _store(db_url, from_db or not no_record)
    now = now_opt if now_opt is not None else int(time.time())
    probes = [_read_probe(f, ProbeResult) for f in probe_files]
    if do_probe:
        probes.append(run_probe(node, config=tcfg.probe()))
    for p in probes:
        found = security.find_foreign(p, sec)
        security.enforce(found, sec)
        engine.observe(series.from_probe(p) + security.observations(p, found))
        if now_opt is None:
            now = max(now, int(p.taken_at))
    if queue:
        from slurmopt.slurm.backend import get_backend

        snap = get_backend().snapshot()
        engine.observe(series.from_snapshot(snap))
    if from_db and store is not None:
        since = int(state.get("db_seen_at", now - cfg.gpu_idle_window_s))
        points = store.points_since(since + 1)
        engine.observe(series.from_points(points))
        state["db_seen_at"] = max([since, *[p.at for p in points]])
    events = engine.evaluate(now)
    channels: list[Channel] = [LogChannel()]
    channels += [WebhookChannel(u) for u in webhooks]
    if email_to:
        host, _, port = smtp.rpartition(":")
        channels.append(
            EmailChannel(host or "127.0.0.1", int(port or 25), email_from, tuple(email_to))
        )
    failed = Dispatcher(channels, None if no_record else store).dispatch(events)
    save_state(path, state)
    for e in events:
        if as_json:
            click.echo(json.dumps(e.to_dict()))
        else:
            click.echo(f"{e.status:8} {e.severity:8} {e.rule:22} {e.subject}: {e.message}")
    if failed:
        click.get_current_context().exit(EXIT_CHANNEL_FAILED)
