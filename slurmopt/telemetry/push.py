"""``slurmopt probe`` as a package function: probe with Slurm's job map, then push the sample.

A sample goes to the node's ``Extra`` field in Slurm (:func:`extra_summary`, through
the backend) or to the history database (``telemetry_samples``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from slurmopt.errors import SlurmoptError
from slurmopt.model import JobState
from slurmopt.telemetry.config import TelemetryConfig, load_telemetry_config
from slurmopt.telemetry.probe import ProbeResult, run_probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeOptions:
    """One probe's parameters; None falls back to the ``[telemetry]`` configuration."""

    node: str | None = None
    use_slurm: bool = True
    deadline_s: float | None = None
    xid_wait_ms: int | None = None


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


def probe_node(opts: ProbeOptions, tcfg: TelemetryConfig | None = None) -> ProbeResult:
    """Probe this node; GPU holders from Slurm's running jobs unless ``use_slurm`` is off."""
    tcfg = load_telemetry_config() if tcfg is None else tcfg
    cfg = tcfg.probe()
    if opts.deadline_s is not None:
        cfg = replace(cfg, nvml_deadline_s=opts.deadline_s)
    if opts.xid_wait_ms is not None:
        cfg = replace(cfg, xid_wait_ms=opts.xid_wait_ms)
    return run_probe(opts.node, config=cfg, jobs=jobs_from_slurm() if opts.use_slurm else None)


def push(result: ProbeResult, to: str, db_url: str | None = None) -> str:
    """Push ``result`` to Slurm (``to == "slurm"``) or the history database; what was done.

    Raises:
        SlurmUnavailable, SlurmCommandError: writing the node's Extra failed.
        DatabaseError, ConfigError: the database could not be used.
    """
    if to == "slurm":
        from slurmopt.telemetry.nodectl import BackendNodeControl

        BackendNodeControl().set_extra(result.node, extra_summary(result))
        return f"pushed to Slurm: node {result.node} Extra"
    from slurmopt.history.db import engine_for
    from slurmopt.telemetry.store import HistoryStore, points_from_probe

    n = HistoryStore(engine_for(db_url)).add_points(points_from_probe(result))
    return f"pushed {n} GPU sample(s) to the history database"
