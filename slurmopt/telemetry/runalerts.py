"""One ``slurmopt alerts`` run: observe (probes, queue, history), evaluate, notify, record.

:class:`AlertsOptions` carries the command's parameters (None: the ``[telemetry]``
configuration decides); :func:`run_alerts` merges them with the configuration,
runs probes, kills foreign GPU processes where the site opted in, evaluates the
rules, notifies and records, and returns the events and whether a channel failed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slurmopt.errors import ConfigError, SlurmoptError

if TYPE_CHECKING:
    from slurmopt.telemetry.alerts import AlertConfig, AlertEvent
    from slurmopt.telemetry.channels import Channel
    from slurmopt.telemetry.config import TelemetryConfig

log = logging.getLogger(__name__)

EXIT_CHANNEL_FAILED = 12


@dataclass(frozen=True)
class AlertsOptions:
    """What one run observes and where it sends events; None falls back to the config."""

    probe: bool = False
    node: str | None = None
    probe_files: tuple[str, ...] = ()
    queue: bool = False
    from_db: bool = False
    db_url: str | None = None
    record: bool = True
    state_file: str | None = None
    webhooks: tuple[str, ...] = ()
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    smtp: str | None = None
    idle_minutes: int | None = None
    idle_util: float | None = None
    max_temp: float | None = None
    wait_p90_hours: float | None = None
    kill_foreign: bool = False
    now: int | None = None


@dataclass(frozen=True)
class AlertsOutcome:
    """The events of a run, and whether a notification channel failed."""

    events: list[AlertEvent]
    channel_failed: bool


def alert_config(opts: AlertsOptions, tcfg: TelemetryConfig) -> AlertConfig:
    """The ``[telemetry]`` alert rules with the run's overrides."""
    cfg = tcfg.alerts()
    return replace(
        cfg,
        gpu_idle_window_s=cfg.gpu_idle_window_s
        if opts.idle_minutes is None
        else opts.idle_minutes * 60,
        gpu_idle_util_pct=cfg.gpu_idle_util_pct if opts.idle_util is None else opts.idle_util,
        temperature_c=cfg.temperature_c if opts.max_temp is None else opts.max_temp,
        wait_p90_s=cfg.wait_p90_s if opts.wait_p90_hours is None else opts.wait_p90_hours * 3600,
    )


def channels(opts: AlertsOptions, tcfg: TelemetryConfig) -> list[Channel]:
    """The log, and the run's (else the configured) webhooks and email recipients."""
    from slurmopt.telemetry.channels import EmailChannel, LogChannel, WebhookChannel

    out: list[Channel] = [LogChannel()]
    out += [WebhookChannel(u) for u in opts.webhooks or tcfg.webhooks]
    email_to = opts.email_to or tcfg.email_to
    if email_to:
        host, _, port = (opts.smtp or tcfg.smtp).rpartition(":")
        sender = opts.email_from or tcfg.email_from
        out.append(EmailChannel(host or "127.0.0.1", int(port or 25), sender, tuple(email_to)))
    return out


def state_path(opts: AlertsOptions, tcfg: TelemetryConfig) -> Path:
    """The state file: the run's, the configured one, else ``<state dir>/alerts-state.json``."""
    chosen = opts.state_file or tcfg.alert_state_file
    if chosen:
        return Path(chosen)
    from slurmopt.history.config import default_state_dir

    return default_state_dir() / "alerts-state.json"


def _store(opts: AlertsOptions) -> Any:
    if not (opts.from_db or opts.record):
        return None
    from slurmopt.history.db import engine_for
    from slurmopt.telemetry.store import HistoryStore

    try:
        return HistoryStore(engine_for(opts.db_url))
    except SlurmoptError as exc:
        log.warning("history database unavailable (alerts not recorded): %s", exc)
        return None


def _read_probe(path: str) -> Any:
    from slurmopt.telemetry.probe import ProbeResult

    try:
        return ProbeResult.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--probe-file {path}: {exc}") from exc


def run_alerts(opts: AlertsOptions, tcfg: TelemetryConfig | None = None) -> AlertsOutcome:
    """Observe, evaluate and notify once; the state file keeps the series between runs.

    Raises:
        ConfigError: a bad probe file or configuration.
        SlurmUnavailable, SlurmCommandError: ``queue`` and Slurm could not be read.
    """
    from slurmopt.telemetry import security, series
    from slurmopt.telemetry.alerts import AlertEngine
    from slurmopt.telemetry.channels import Dispatcher
    from slurmopt.telemetry.config import load_telemetry_config
    from slurmopt.telemetry.probe import run_probe
    from slurmopt.telemetry.runhealth import load_state, save_state

    tcfg = load_telemetry_config() if tcfg is None else tcfg
    cfg = alert_config(opts, tcfg)
    sec = replace(tcfg.security(), kill=True) if opts.kill_foreign else tcfg.security()
    path = state_path(opts, tcfg)
    state = load_state(path)
    engine = AlertEngine(cfg, state)
    store = _store(opts)
    now = opts.now if opts.now is not None else int(time.time())
    probes = [_read_probe(f) for f in opts.probe_files]
    if opts.probe:
        probes.append(run_probe(opts.node, config=tcfg.probe()))
    for p in probes:
        found = security.find_foreign(p, sec)
        security.enforce(found, sec)
        engine.observe(series.from_probe(p) + security.observations(p, found))
        if opts.now is None:
            now = max(now, int(p.taken_at))
    if opts.queue:
        from slurmopt.slurm.backend import get_backend

        engine.observe(series.from_snapshot(get_backend().snapshot()))
    if opts.from_db and store is not None:
        since = int(state.get("db_seen_at", now - cfg.gpu_idle_window_s))
        points = store.points_since(since + 1)
        engine.observe(series.from_points(points))
        state["db_seen_at"] = max([since, *[p.at for p in points]])
    events = engine.evaluate(now)
    failed = Dispatcher(channels(opts, tcfg), store if opts.record else None).dispatch(events)
    save_state(path, state)
    return AlertsOutcome(list(events), bool(failed))
