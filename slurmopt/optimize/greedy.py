"""Greedy baselines: round-robin, hash, least-loaded, earliest-start, earliest-completion.

Each is a plain function ``problem -> genes`` (see :data:`GENES`) wrapped as a
solver ``solve_*(problem, *, seed, budget) -> Assignment``. They are
deterministic (the seed is recorded, not used) and take one list-scheduling
pass at most, so they ignore the budget.

* ``current``: every job stays where it is (first eligible partition it lists);
* ``round-robin``: a pointer cycles over partition indices; each job (priority
  order) takes the next partition it may use;
* ``hash``: ``crc32(job id)`` modulo the job's choices (a stateless router);
* ``least-loaded``: the eligible partition with the least committed work per
  unit of capacity (GPU-seconds per GPU for GPU jobs, CPU-seconds per CPU
  otherwise), counting running jobs' remaining work;
* ``earliest-start``: list scheduling, each job to the partition where it
  starts first: what Slurm does with a multi-partition job;
* ``earliest-completion``: the same, minimizing start + runtime there (the
  speed-aware greedy).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from slurmopt.optimize import schedule as sched
from slurmopt.optimize.eligibility import WHOLE
from slurmopt.optimize.search import Assignment, Budget

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem


def round_robin_pick(choices: Sequence[int], ptr: int, n: int) -> int:
    """The first of ``choices`` at or after pointer ``ptr`` on a ring of ``n`` partitions."""
    return min(choices, key=lambda p: (p - ptr) % n)


def hash_pick(job_id: int, choices: Sequence[int]) -> int:
    """``crc32(job id) mod len(choices)``: a stateless router."""
    return choices[zlib.crc32(str(job_id).encode()) % len(choices)]


def least_loaded_pick(choices: Sequence[int], load: Callable[[int], float]) -> int:
    """The choice with the least ``load`` (ties: the lowest partition index)."""
    return min(choices, key=lambda p: (load(p), p))


def current(problem: Problem) -> list[int]:
    """Every job where it already is."""
    return problem.current_genes()


def round_robin(problem: Problem) -> list[int]:
    """Cycle a pointer over partitions; each job takes the next one it may use."""
    n = max(1, problem.n_parts)
    ptr = 0
    out: list[int] = []
    for ch in problem.choices:
        pick = round_robin_pick(ch, ptr, n)
        out.append(pick)
        ptr = (pick + 1) % n
    return out


def hash_route(problem: Problem) -> list[int]:
    """``crc32(job id) mod len(choices)``."""
    out: list[int] = []
    for g, o in enumerate(problem.var_pos):
        out.append(hash_pick(problem.jobs[o].job_id, problem.choices[g]))
    return out


def least_loaded(problem: Problem) -> list[int]:
    """The partition with the least work per unit of capacity, running jobs included."""
    base = problem.base
    ngpu = [0.0] * problem.n_parts
    ncpu = [0.0] * problem.n_parts
    wgpu = [0.0] * problem.n_parts
    wcpu = [0.0] * problem.n_parts
    names = {n.name: i for i, n in enumerate(problem.snapshot.nodes)}
    for pi, part in enumerate(problem.partitions):
        for name in part.nodes:
            n = names.get(name)
            if n is None:
                continue
            ngpu[pi] += base.cap_gpu[n]
            ncpu[pi] += base.cap_cpu[n]
            ts = base.times[n]
            for i in range(len(ts) - 1):
                dt = ts[i + 1] - ts[i]
                wgpu[pi] += (base.cap_gpu[n] - base.gpu[n][i]) * dt
                wcpu[pi] += (base.cap_cpu[n] - base.cpu[n][i]) * dt
    parts = list(problem.fixed)
    order = {o: g for g, o in enumerate(problem.var_pos)}
    for o, opts in enumerate(problem.options):
        if problem.fixed[o] < 0:
            ch = problem.choices[order[o]]
            gpu_job = problem.jobs[o].request.wants_gpus

            def load(p: int, gpu_job: bool = gpu_job) -> float:
                cap, work = (ngpu[p], wgpu[p]) if gpu_job else (ncpu[p], wcpu[p])
                return work / cap if cap else float("inf")

            parts[o] = least_loaded_pick(ch, load)
        opt = opts[parts[o]]
        k = opt.n_nodes
        node0 = opt.nodes[0]
        g = base.cap_gpu[node0] if opt.gpu == WHOLE else opt.gpu
        c = base.cap_cpu[node0] if opt.cpu == WHOLE else opt.cpu
        wgpu[parts[o]] += g * k * opt.runtime
        wcpu[parts[o]] += c * k * opt.runtime
    return [parts[o] for o in problem.var_pos]


def earliest_start(problem: Problem) -> list[int]:
    """List scheduling, each job where it starts first (Slurm's multi-partition rule)."""
    r = sched.run(problem, problem.parts_of(problem.current_genes()), rule="start")
    return [r.parts[o] for o in problem.var_pos]


def earliest_completion(problem: Problem) -> list[int]:
    """List scheduling, each job where it completes first (start + runtime there)."""
    r = sched.run(problem, problem.parts_of(problem.current_genes()), rule="end")
    return [r.parts[o] for o in problem.var_pos]


GENES: dict[str, Callable[[Problem], list[int]]] = {
    "current": current,
    "round-robin": round_robin,
    "hash": hash_route,
    "least-loaded": least_loaded,
    "earliest-start": earliest_start,
    "earliest-completion": earliest_completion,
}
"""Greedy rule name -> genes function."""


def _solve(name: str, problem: Problem, seed: int) -> Assignment:
    t = time.perf_counter()
    genes = GENES[name](problem)
    value = problem.evaluate(genes)
    wall = time.perf_counter() - t
    return Assignment(
        tuple(genes), value, name, seed, problem.feasible(genes), wall, {"evaluations": 1}
    )


def solve_current(problem: Problem, *, seed: int = 0, budget: Budget | None = None) -> Assignment:
    """Solver wrapper of :func:`current`."""
    return _solve("current", problem, seed)


def solve_round_robin(
    problem: Problem, *, seed: int = 0, budget: Budget | None = None
) -> Assignment:
    """Solver wrapper of :func:`round_robin`."""
    return _solve("round-robin", problem, seed)


def solve_hash(problem: Problem, *, seed: int = 0, budget: Budget | None = None) -> Assignment:
    """Solver wrapper of :func:`hash_route`."""
    return _solve("hash", problem, seed)


def solve_least_loaded(
    problem: Problem, *, seed: int = 0, budget: Budget | None = None
) -> Assignment:
    """Solver wrapper of :func:`least_loaded`."""
    return _solve("least-loaded", problem, seed)


def solve_earliest_start(
    problem: Problem, *, seed: int = 0, budget: Budget | None = None
) -> Assignment:
    """Solver wrapper of :func:`earliest_start`."""
    return _solve("earliest-start", problem, seed)


def solve_earliest_completion(
    problem: Problem, *, seed: int = 0, budget: Budget | None = None
) -> Assignment:
    """Solver wrapper of :func:`earliest_completion`."""
    return _solve("earliest-completion", problem, seed)


def solve_best_greedy(
    problem: Problem, *, seed: int = 0, budget: Budget | None = None
) -> Assignment:
    """Every greedy rule; the best objective wins (ties: the order of :data:`GENES`)."""
    t = time.perf_counter()
    best: Assignment | None = None
    values: dict[str, float] = {}
    for name in GENES:
        a = _solve(name, problem, seed)
        values[name] = a.objective
        if best is None or a.objective < best.objective:
            best = a
    assert best is not None
    stats = {"evaluations": len(GENES), "winner": best.solver, "values": values}
    return Assignment(
        best.genes,
        best.objective,
        "best-greedy",
        seed,
        best.feasible,
        time.perf_counter() - t,
        stats,
    )
