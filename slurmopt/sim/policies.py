"""Placement policies for the simulator.

A policy picks, at submission, the partitions a job is submitted to (several
means Slurm's multi-partition rule applies among them), and may re-place
pending jobs at every controller tick.

Baselines (fast, in-engine):

* ``as-submitted``: the trace's partition when the spec has a partition of that
  name and the job fits it; otherwise one eligible partition drawn from the
  policy's seeded generator with probability proportional to its capacity
  (GPUs, else CPUs): users who pick one partition, big ones more often;
* ``slurm-multi``: every eligible partition (``sbatch -p a,b,c``);
* ``round-robin``: eligible partitions in turn (one global counter);
* ``hash``: CRC-32 of the job id modulo the number of eligible partitions;
* ``least-loaded``: the partition with the lowest (in use + queued) / total, in
  its primary unit (GPUs, else CPUs);
* ``earliest-completion``: the partition with the earliest estimated completion:
  the reservation-style start from running jobs' estimated ends, plus the queued
  work ahead there spread over the partition, plus the runtime there.

The optimizer policies (``ga``, ``sa``, ``auto``, and the optimizer's own greedy
rules) live in :mod:`slurmopt.sim.optpolicy`: they build a
:class:`slurmopt.model.Snapshot` from the simulator state and call the same
Problem and solvers as the live system.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

from slurmopt.sim.engine import Policy, Simulator
from slurmopt.sim.workload import SimJob


class BasePolicy:
    """Common part: a seeded generator, no re-planning."""

    name = "base"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        raise NotImplementedError

    def replan(self, sim: Simulator) -> dict[int, tuple[int, ...]]:
        return {}


class AsSubmitted(BasePolicy):
    name = "as-submitted"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        want = job.job.partition
        if want is not None:
            p = sim.cluster.by_name.get(want)
            if p is not None and p in job.allowed:
                return (p,)
        parts = sim.cluster.partitions
        weights = [
            parts[p].total_gpus if parts[p].has_gpus else parts[p].total_cpus for p in job.allowed
        ]
        return (self.rng.choices(job.allowed, weights=weights)[0],)


class SlurmMulti(BasePolicy):
    name = "slurm-multi"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        return job.allowed


class RoundRobin(BasePolicy):
    name = "round-robin"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.counter = 0

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        p = job.allowed[self.counter % len(job.allowed)]
        self.counter += 1
        return (p,)


class Hash(BasePolicy):
    name = "hash"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        h = zlib.crc32(str(job.job.job_id).encode())
        return (job.allowed[h % len(job.allowed)],)


class LeastLoaded(BasePolicy):
    name = "least-loaded"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        parts = sim.cluster.partitions
        best, best_load = job.allowed[0], float("inf")
        for p in job.allowed:
            part = parts[p]
            if part.has_gpus:
                total, free = part.total_gpus, part.free_gpus
            else:
                total, free = part.total_cpus, part.free_cpus
            load = (total - free + sim.queued[p]) / max(total, 1)
            if load < best_load:
                best, best_load = p, load
        return (best,)


def estimated_completion(sim: Simulator, job: SimJob, p: int) -> float:
    """Greedy estimate of when ``job`` would end in ``p`` (see the module docstring)."""
    part = sim.cluster.partitions[p]
    total = part.total_gpus if part.has_gpus else part.total_cpus
    ahead = sim.queued_work[p] / max(total, 1)
    k, c, g, _ = job.shapes[p]
    free = part.free_gpus if part.has_gpus else part.free_cpus
    need = k * g if part.has_gpus else k * c
    start = float(sim.now)
    if free < need:
        shadow = sim._shadow(job, p)
        start = float(shadow[0]) if shadow is not None else start
    return start + ahead + job.runtime[p]


class EarliestCompletion(BasePolicy):
    name = "earliest-completion"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        if len(job.allowed) == 1:
            return job.allowed
        best = min(job.allowed, key=lambda p: (estimated_completion(sim, job, p), p))
        return (best,)


BASELINES: dict[str, Callable[[int], BasePolicy]] = {
    "as-submitted": AsSubmitted,
    "slurm-multi": SlurmMulti,
    "round-robin": RoundRobin,
    "hash": Hash,
    "least-loaded": LeastLoaded,
    "earliest-completion": EarliestCompletion,
}


def make_policy(name: str, *, seed: int = 0, **options: object) -> Policy:
    """The policy called ``name`` (a baseline, or an optimizer policy).

    Raises:
        ValueError: unknown policy name.
    """
    if name in BASELINES:
        return BASELINES[name](seed)
    from slurmopt.sim import optpolicy

    if name in optpolicy.OPT_POLICIES:
        return optpolicy.OptimizerPolicy(name, seed=seed, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown policy {name!r} (one of {', '.join(policy_names())})")


def policy_names() -> list[str]:
    """Every policy name the simulator knows."""
    from slurmopt.sim import optpolicy

    return [*BASELINES, *optpolicy.OPT_POLICIES]
