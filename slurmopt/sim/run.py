"""One call that replays a trace on a cluster spec under a policy and scores it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slurmopt.clusterspec import ClusterSpec
from slurmopt.sim.cluster import SimCluster
from slurmopt.sim.engine import SimStats, Simulator
from slurmopt.sim.metrics import JobOutcome, Metrics, summarize, summarize_by
from slurmopt.sim.policies import make_policy
from slurmopt.sim.traces import Trace
from slurmopt.sim.workload import build_jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimResult:
    """Everything a replay produced."""

    trace: str
    cluster: str
    policy: str
    seed: int
    metrics: Metrics
    by_class: dict[str, Metrics]
    outcomes: list[JobOutcome]
    stats: SimStats
    rejected: int
    """Trace jobs that fit no partition of the spec (left out of the replay)."""
    timeline: list[tuple[int, int, int]] = field(default_factory=list)
    total_cpus: float = 0.0
    total_gpus: int = 0
    build_s: float = 0.0

    @property
    def jobs_per_second(self) -> float:
        return len(self.outcomes) / self.stats.wall_s if self.stats.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form (``slurmopt simulate --json``); NaN becomes null."""
        out: dict[str, Any] = _no_nan(self._dict())
        return out

    def _dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace,
            "cluster": self.cluster,
            "policy": self.policy,
            "seed": self.seed,
            "jobs": len(self.outcomes),
            "rejected": self.rejected,
            "total_cpus": self.total_cpus,
            "total_gpus": self.total_gpus,
            "metrics": self.metrics.to_dict(),
            "by_class": {k: v.to_dict() for k, v in self.by_class.items()},
            "stats": {
                "events": self.stats.events,
                "passes": self.stats.passes,
                "full_passes": self.stats.full_passes,
                "backfilled": self.stats.backfilled,
                "reservations": self.stats.reservations,
                "replans": self.stats.replans,
                "skipped_ticks": self.stats.skipped_ticks,
                "moves": self.stats.moves,
                "wall_s": self.stats.wall_s,
                "policy_s": self.stats.policy_s,
                "build_s": self.build_s,
                "jobs_per_s": self.jobs_per_second,
                **self.stats.extra,
            },
        }


def _no_nan(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_nan(v) for v in obj]
    return obj


_WHY = {
    "never_started": "no recorded start (SWF wait -1, or cancelled before it started)",
    "zero_runtime": "runtime 0 or unknown",
    "failed": "failed or cancelled",
    "over_request": "ran longer than requested",
}


def empty_trace_message(trace: Trace) -> str:
    """Why a trace has no job left, and which option keeps them."""
    if not trace.records:
        return f"{trace.name}: no job records"
    why = "; ".join(f"{n} {_WHY.get(k, k)}" for k, n in sorted(trace.dropped.items()))
    hint = ""
    if trace.dropped.get("never_started"):
        hint = (
            " (a log whose wait field is -1 everywhere does not record starts: "
            "--keep-unknown-wait keeps those jobs and still drops zero runtimes; "
            "--keep-all keeps every record)"
        )
    return f"{trace.name}: cleaning dropped all {trace.records} records: {why}{hint}"


def simulate(  # noqa: PLR0913  keyword-only options of one replay, as the CLI and benchmarks pass them
    trace: Trace,
    spec: ClusterSpec,
    policy: str,
    *,
    seed: int = 0,
    controller_interval: int | None = None,
    first_tick: int | None = None,
    launch_s: int = 0,
    job_types: Sequence[str] = (),
    window: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    check: bool = False,
    policy_options: dict[str, Any] | None = None,
) -> SimResult:
    """Replay ``trace`` on ``spec`` under ``policy``; deterministic for a given seed.

    ``job_types`` are the types assigned to trace jobs that name none (see
    :mod:`slurmopt.sim.workload`); by default the spec's ``job_type_speed`` keys.
    ``first_tick``: seconds from the first submission to the first controller
    tick (default: ``controller_interval``). ``launch_s``: seconds every job holds
    its nodes beyond its runtime (Slurm's job launch and teardown).

    Raises:
        ValueError: unknown policy, or no trace job fits the cluster.
    """
    t0 = time.perf_counter()
    if not trace.jobs:
        raise ValueError(empty_trace_message(trace))
    cluster = SimCluster.from_spec(spec)
    types = list(job_types) or sorted(spec.job_type_speed)
    jobs, rejected = build_jobs(trace, cluster, types)
    if rejected:
        log.warning("%d trace jobs fit no partition of %s: left out", len(rejected), spec.name)
    if not jobs:
        raise ValueError(f"no job of {trace.name} fits cluster {spec.name}")
    pol = make_policy(policy, seed=seed, **(policy_options or {}))
    sim = Simulator(
        cluster,
        jobs,
        pol,
        controller_interval=controller_interval,
        first_tick=first_tick,
        launch_s=launch_s,
        window=window,
        progress=progress,
        check=check,
    )
    build_s = time.perf_counter() - t0
    outcomes = sim.run()
    counters = getattr(pol, "counters", None)
    if callable(counters):
        sim.stats.extra.update(counters())
    cap = {"total_cpus": cluster.total_cpus, "total_gpus": float(cluster.total_gpus)}
    return SimResult(
        trace=trace.name,
        cluster=spec.name,
        policy=policy,
        seed=seed,
        metrics=summarize(outcomes, **cap),
        by_class=summarize_by(outcomes, lambda o: o.job_class, **cap),
        outcomes=outcomes,
        stats=sim.stats,
        rejected=len(rejected),
        timeline=sim.timeline,
        total_cpus=cluster.total_cpus,
        total_gpus=cluster.total_gpus,
        build_s=build_s,
    )
