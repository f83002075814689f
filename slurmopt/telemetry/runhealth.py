"""One ``slurmopt health`` run: probe (or probe file) -> rules -> drain / resume.

Exit codes (declared here, used by the CLI):

* :data:`EXIT_HEALTHY` (0): healthy (a node slurmopt had drained was resumed);
* :data:`EXIT_UNHEALTHY` (8): a rule failed (the node was drained, would be
  with ``--dry-run``, or is already drained by someone else and left alone);
* :data:`EXIT_NO_DECISION` (9): healthy or not, the node's Slurm state could not
  be read, so nothing was changed;
* errors keep the codes of :mod:`slurmopt.errors` (2 config, 3 Slurm
  unreachable, 4 Slurm command failed, ...).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmopt.errors import SlurmoptError
from slurmopt.fsutil import write_atomic
from slurmopt.model import Node
from slurmopt.telemetry.alloc import gres_gpus_for, parse_gres_conf
from slurmopt.telemetry.health import (
    Action,
    Decision,
    HealthConfig,
    HealthState,
    Verdict,
    decide,
    evaluate,
)
from slurmopt.telemetry.nodectl import NodeControl
from slurmopt.telemetry.probe import ProbeResult

log = logging.getLogger(__name__)

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 8
EXIT_NO_DECISION = 9


def default_state_path() -> Path:
    """``<state dir>/health-state.json`` (``/var/lib/slurmopt`` for root)."""
    from slurmopt.history.config import default_state_dir

    return default_state_dir() / "health-state.json"


def load_state(path: Path) -> dict[str, Any]:
    """The saved state, or ``{}`` when missing or unreadable (logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("health state %s unreadable (%s): starting afresh", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_state(path: Path, state: HealthState) -> None:
    """Write the state atomically (:func:`slurmopt.fsutil.write_atomic`, readable by root only)."""
    write_atomic(path, json.dumps(state, indent=1, sort_keys=True), mode=0o600)


def expected_gpus(node: Node | None, gres_conf_text: str | None, name: str) -> int | None:
    """GPUs the node should have: Slurm's configured GRES, else gres.conf, else None."""
    if node is not None and node.gpus:
        return node.gpu_total
    if gres_conf_text is not None:
        count, _ = gres_gpus_for(parse_gres_conf(gres_conf_text), name)
        return count
    return 0 if node is not None else None


@dataclass
class HealthReport:
    """What one run found and did (``--json`` prints :meth:`to_dict`)."""

    node: str
    verdict: Verdict
    decision: Decision
    dry_run: bool
    applied: bool = False
    error: str | None = None
    node_state: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if not self.verdict.healthy:
            return EXIT_UNHEALTHY
        if self.error is not None:
            return EXIT_NO_DECISION
        return EXIT_HEALTHY

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "healthy": self.verdict.healthy,
            "expected_gpus": self.verdict.expected_gpus,
            "findings": [
                {"rule": f.rule, "gpu": f.gpu_index, "message": f.message}
                for f in self.verdict.findings
            ],
            "action": self.decision.action.value,
            "reason": self.decision.reason,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "error": self.error,
            "node_state": self.node_state,
            "exit_code": self.exit_code,
        }


def run_health(
    probe: ProbeResult,
    *,
    node_name: str,
    control: NodeControl | None,
    config: HealthConfig,
    state: HealthState,
    dry_run: bool = False,
    gres_conf_text: str | None = None,
) -> HealthReport:
    """Evaluate ``probe`` and drain / resume ``node_name`` accordingly.

    Args:
        probe: the node's probe (live, or from ``--probe-file``).
        node_name: the Slurm node to act on.
        control: Slurm access; None to evaluate only.
        config: the rules.
        state: ECC baselines and latches (mutated; the caller saves it).
        dry_run: decide and report, change nothing in Slurm.
        gres_conf_text: gres.conf content, for the expected GPU count.
    """
    node: Node | None = None
    error: str | None = None
    if control is not None:
        try:
            node = control.node(node_name)
            if node is None:
                error = f"node {node_name} not found in Slurm"
        except SlurmoptError as exc:
            error = f"cannot read node {node_name}: {exc}"
            log.error("%s", error)
    verdict = evaluate(
        probe, config, state, expected_gpus=expected_gpus(node, gres_conf_text, node_name)
    )
    decision = decide(node, verdict)
    report = HealthReport(
        node=node_name,
        verdict=verdict,
        decision=decision,
        dry_run=dry_run,
        error=error,
        node_state={}
        if node is None
        else {"state": node.state.value, "flags": sorted(node.flags), "reason": node.reason},
    )
    if decision.action is Action.NONE or dry_run or control is None:
        return report
    if decision.action is Action.DRAIN:
        log.warning("draining %s: %s", node_name, decision.reason)
        control.drain(node_name, decision.reason)
    else:
        log.warning("resuming %s: %s", node_name, decision.reason)
        control.resume(node_name)
    report.applied = True
    return report
