"""``slurmopt health``: Slurm's HealthCheckProgram. Drains a faulty node, resumes it when healthy.

Exit codes: 0 healthy, 8 unhealthy (drained, would be drained with --dry-run,
or drained by someone else and left alone), 9 healthy but the node's Slurm
state could not be read (nothing changed), 10 the run's time bound passed;
errors keep slurmopt's codes (2 config, 3 Slurm unreachable, 4 Slurm command
failed). See docs/telemetry.md.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

import click

from slurmopt.errors import ConfigError, SlurmoptError
from slurmopt.telemetry.config import load_telemetry_config
from slurmopt.telemetry.health import DEFAULT_CRITICAL_XIDS, clear_latches
from slurmopt.telemetry.probe import ProbeResult, default_node_name, run_probe

EXIT_TIMEOUT = 10


class HealthTimeout(SlurmoptError):
    """The health run passed its overall time bound."""

    exit_code = EXIT_TIMEOUT


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
    from slurmopt.telemetry.nodectl import BackendNodeControl
    from slurmopt.telemetry.runhealth import default_state_path, load_state, run_health, save_state

    tcfg = load_telemetry_config()
    base = tcfg.health()
    config = replace(
        base,
        expected_gpus=base.expected_gpus if expected_gpus is None else expected_gpus,
        max_temperature_c=base.max_temperature_c if max_temp is None else (max_temp or None),
        critical_xids=frozenset(critical_xids) if critical_xids else base.critical_xids,
        timeout_s=base.timeout_s if timeout is None else timeout,
    )
    gres_conf = tcfg.gres_conf if gres_conf is None else gres_conf
    name = node or default_node_name()
    state_file = state_file or tcfg.health_state_file
    state_path = Path(state_file) if state_file else default_state_path()
    probe_cfg = replace(
        tcfg.probe(), nvml_deadline_s=min(tcfg.nvml_deadline_s, config.timeout_s / 3)
    )
    with time_bound(config.timeout_s):
        state = load_state(state_path)
        if clear:
            n = clear_latches(state)
            click.echo(f"cleared {n} latched fault(s)", err=True)
        probe = _read_probe_file(probe_file) if probe_file else run_probe(name, config=probe_cfg)
        control = None if no_slurm else BackendNodeControl()
        report = run_health(
            probe,
            node_name=name,
            control=control,
            config=config,
            state=state,
            dry_run=dry_run,
            gres_conf_text=_gres_text(gres_conf),
        )
        if not dry_run:
            save_state(state_path, state)
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
