"""One ``slurmopt health`` check end to end: options merged with the config, a time bound,
the state file, the probe, then :func:`slurmopt.telemetry.runhealth.run_health`.

:class:`HealthOptions` carries the command's parameters (None: the ``[telemetry]``
configuration decides); :func:`check_node` returns the report the command prints.
Exit code 10 (:data:`EXIT_TIMEOUT`) when the overall time bound passes.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

from slurmopt.errors import ConfigError, SlurmoptError
from slurmopt.telemetry.config import TelemetryConfig, load_telemetry_config
from slurmopt.telemetry.health import HealthConfig, clear_latches
from slurmopt.telemetry.probe import ProbeResult, default_node_name, run_probe
from slurmopt.telemetry.runhealth import (
    HealthReport,
    default_state_path,
    load_state,
    run_health,
    save_state,
)

EXIT_TIMEOUT = 10


class HealthTimeout(SlurmoptError):
    """The health run passed its overall time bound."""

    exit_code = EXIT_TIMEOUT


@dataclass(frozen=True)
class HealthOptions:
    """One check's parameters; None falls back to the ``[telemetry]`` configuration."""

    node: str | None = None
    probe_file: str | None = None
    dry_run: bool = False
    state_file: str | None = None
    gres_conf: str | None = None
    expected_gpus: int | None = None
    max_temp: int | None = None
    critical_xids: tuple[int, ...] = ()
    use_slurm: bool = True
    clear_latches: bool = False
    timeout_s: float | None = None


@dataclass(frozen=True)
class HealthCheck:
    """What the command prints: the node checked, the report, the latches cleared first."""

    node: str
    report: HealthReport
    cleared: int | None


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise :class:`HealthTimeout` in the main thread after ``seconds`` (SIGALRM)."""

    def on_alarm(_sig: int, _frame: FrameType | None) -> None:
        raise HealthTimeout(f"health check did not finish within {seconds:g} s")

    if threading.current_thread() is not threading.main_thread():
        yield  # signals only work in the main thread: the parts keep their own timeouts
        return
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def health_config(opts: HealthOptions, tcfg: TelemetryConfig) -> HealthConfig:
    """The ``[telemetry]`` health rules with the check's overrides (``max_temp`` 0: none)."""
    base = tcfg.health()
    return replace(
        base,
        expected_gpus=base.expected_gpus if opts.expected_gpus is None else opts.expected_gpus,
        max_temperature_c=base.max_temperature_c
        if opts.max_temp is None
        else (opts.max_temp or None),
        critical_xids=frozenset(opts.critical_xids) if opts.critical_xids else base.critical_xids,
        timeout_s=base.timeout_s if opts.timeout_s is None else opts.timeout_s,
    )


def _read_probe_file(path: str) -> ProbeResult:
    try:
        text = Path(path).read_text(encoding="utf-8")
        return ProbeResult.from_dict(json.loads(text))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--probe-file {path}: {exc}") from exc


def _gres_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8") if path else None
    except OSError:
        return None


def check_node(opts: HealthOptions, tcfg: TelemetryConfig | None = None) -> HealthCheck:
    """Probe (or read a probe file), evaluate, and drain / resume the node within the bound.

    Raises:
        HealthTimeout: the run passed its time bound.
        ConfigError: a bad probe file or configuration.
        SlurmUnavailable, SlurmCommandError: Slurm failed while changing the node.
    """
    from slurmopt.telemetry.nodectl import BackendNodeControl

    tcfg = load_telemetry_config() if tcfg is None else tcfg
    config = health_config(opts, tcfg)
    gres_conf = tcfg.gres_conf if opts.gres_conf is None else opts.gres_conf
    name = opts.node or default_node_name()
    chosen = opts.state_file or tcfg.health_state_file
    state_path = Path(chosen) if chosen else default_state_path()
    probe_cfg = replace(
        tcfg.probe(), nvml_deadline_s=min(tcfg.nvml_deadline_s, config.timeout_s / 3)
    )
    cleared = None
    with time_bound(config.timeout_s):
        state = load_state(state_path)
        if opts.clear_latches:
            cleared = clear_latches(state)
        probe = (
            _read_probe_file(opts.probe_file)
            if opts.probe_file
            else run_probe(name, config=probe_cfg)
        )
        report = run_health(
            probe,
            node_name=name,
            control=BackendNodeControl() if opts.use_slurm else None,
            config=config,
            state=state,
            dry_run=opts.dry_run,
            gres_conf_text=_gres_text(gres_conf),
        )
        if not opts.dry_run:
            save_state(state_path, state)
    return HealthCheck(name, report, cleared)
