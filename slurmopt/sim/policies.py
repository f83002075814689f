"""Placement policies for the simulator.

A policy picks, at submission, the partitions a job is submitted to, in the
order the job lists them (several means Slurm's multi-partition rule applies
among them), and may re-place pending jobs at every controller tick.

Baselines (fast, in-engine, decided at submission from the engine's state):

* ``as-submitted``: the trace's partition when the spec has a partition of that
  name and the job fits it; otherwise one eligible partition drawn from the
  policy's seeded generator with probability proportional to its capacity
  (GPUs, else CPUs): users who pick one partition, big ones more often;
* ``slurm-multi``: every eligible partition (``sbatch -p a,b,c`` in the
  spec's order), ordered as Slurm orders a multi-partition job: partition
  PriorityTier first (highest first), then the order the job listed them;
* ``slurm-multi-fast``: the same rule with the partitions listed fastest GPU
  first (the spec's ``gpu_speed`` of a partition's slowest GPU type; ties in
  spec order): what a well-configured site (or user) would set, the strongest
  honest baseline;
* ``round-robin``, ``hash``, ``least-loaded``: the rules of
  :mod:`slurmopt.optimize.greedy` (``round_robin_pick``, ``hash_pick``,
  ``least_loaded_pick``) applied online, one job at a time, to the engine's
  live state; ``least-loaded``'s load is (in use + queued) / total in the
  partition's primary unit (GPUs, else CPUs);
* ``est-completion``: the partition with the earliest *estimated* completion:
  the engine's earliest start from running jobs' estimated ends
  (:meth:`Simulator.earliest_start`), plus the queued work ahead there spread
  over the partition, plus the runtime there. Not the optimizer's
  ``earliest-completion`` (list scheduling of the whole queue; that one runs
  inside the ``optsub`` policy), hence the different name.

The optimizer policies (``optsub``, ``auto``, ``ga``, ``sa``) live in
:mod:`slurmopt.sim.optpolicy`: they build a :class:`slurmopt.model.Snapshot`
from the simulator state and call the same Problem and solvers as the live
system.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from slurmopt.optimize.greedy import hash_pick, least_loaded_pick, round_robin_pick
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
    """Every eligible partition, PriorityTier first, then the job's (= the spec's) order."""

    name = "slurm-multi"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._order: dict[tuple[int, ...], tuple[int, ...]] = {}

    def key(self, sim: Simulator, p: int) -> tuple[float, ...]:
        return (-sim.cluster.partitions[p].priority_tier,)

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        got = self._order.get(job.allowed)
        if got is None:
            rank = {p: i for i, p in enumerate(job.allowed)}
            got = tuple(sorted(job.allowed, key=lambda p: (*self.key(sim, p), rank[p])))
            self._order[job.allowed] = got
        return got


class SlurmMultiFast(SlurmMulti):
    """Slurm's rule with the partitions listed fastest GPU first."""

    name = "slurm-multi-fast"

    def key(self, sim: Simulator, p: int) -> tuple[float, ...]:
        part = sim.cluster.partitions[p]
        speed = sim.cluster.partition_speed(None, part) if part.has_gpus else 1.0
        return (-part.priority_tier, -speed)


class RoundRobin(BasePolicy):
    name = "round-robin"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.ptr = 0

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        n = max(1, len(sim.cluster.partitions))
        p = round_robin_pick(job.allowed, self.ptr, n)
        self.ptr = (p + 1) % n
        return (p,)


class Hash(BasePolicy):
    name = "hash"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        return (hash_pick(job.job.job_id, job.allowed),)


class LeastLoaded(BasePolicy):
    name = "least-loaded"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        parts = sim.cluster.partitions

        def load(p: int) -> float:
            part = parts[p]
            if part.has_gpus:
                total, free = part.total_gpus, part.free_gpus
            else:
                total, free = part.total_cpus, part.free_cpus
            return (total - free + sim.queued[p]) / max(total, 1)

        return (least_loaded_pick(job.allowed, load),)


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
        shadow = sim.earliest_start(job, p)
        start = float(shadow) if shadow is not None else start
    return start + ahead + job.runtime[p]


class EstimatedCompletion(BasePolicy):
    name = "est-completion"

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        if len(job.allowed) == 1:
            return job.allowed
        best = min(job.allowed, key=lambda p: (estimated_completion(sim, job, p), p))
        return (best,)


BASELINES: dict[str, Callable[[int], BasePolicy]] = {
    "as-submitted": AsSubmitted,
    "slurm-multi": SlurmMulti,
    "slurm-multi-fast": SlurmMultiFast,
    "round-robin": RoundRobin,
    "hash": Hash,
    "least-loaded": LeastLoaded,
    "est-completion": EstimatedCompletion,
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
