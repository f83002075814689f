"""Exact optimum of the time-aware objective: branch and bound over list scheduling.

This is what ``--policy milp`` runs on a time-aware :class:`Problem`. The
objective every other solver optimizes is :meth:`Problem.evaluate`: jobs are
list-scheduled in Slurm's queue order, each at the earliest time its nodes fit
it on its partition. A job's start depends only on the jobs before it in that
order, so the objective is a sum (or, for ``makespan``, a maximum) of terms
fixed one job at a time. The search assigns the scheduled jobs in priority
order (fixed jobs have one choice), keeps the exact value of the prefix, and
bounds the rest by each remaining job's best term on the profile left by the
prefix with nothing else before it (more jobs ahead can only delay a start,
never advance it), which is a valid lower bound. Subtrees whose bound is not
below the incumbent are pruned; the incumbent starts as the best greedy plan,
so the answer is never worse than any greedy rule.

Why not the static MILP (:mod:`slurmopt.optimize.milp` on ``Problem.to_static``)?
The static form is a different objective (each job's cost as if it ran alone,
capacity as resource-seconds over a horizon, a shared node's capacity split
equally between the partitions containing it). On an overlapping partition
layout that split makes the form infeasible even though Slurm's own plan runs
(issue 16's snapshot: ``gpu`` overlapping the A100 and H100 nodes), and where
it is feasible its optimum is not an optimum of :meth:`Problem.evaluate`.
It stays available as the policy ``milp-static``, a heuristic.

The search is exact within a node limit; when the limit is hit, the result
says so (``status = "node_limit"``) and carries the root bound and the gap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slurmopt.optimize import schedule as sched
from slurmopt.optimize.profile import INF, Profiles
from slurmopt.optimize.search import Assignment, Budget

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem

DEFAULT_NODE_LIMIT = 200_000
"""Search nodes (one list-scheduling placement each) before giving up on a proof."""

_REL_TOL = 1e-9


@dataclass(slots=True)
class _Search:
    """State of one branch and bound run."""

    problem: Problem
    choices: list[list[int]]
    node_limit: int
    deadline: float
    makespan: bool
    clock: Callable[[], float] = time.perf_counter
    best_value: float = INF
    best_parts: list[int] = field(default_factory=list)
    nodes: int = 0
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class ExactResult:
    """What the search found: the plan (partition per variable job), its value, proof status."""

    status: str
    """``optimal`` (proven), ``node_limit`` or ``time_limit`` (best found, not proven)."""
    genes: tuple[int, ...]
    objective: float
    bound: float
    nodes: int
    wall_s: float
    start_value: float
    """The best greedy plan's value (the first incumbent)."""


def _term(problem: Problem, o: int, p: int, start: float, makespan: bool) -> tuple[float, float]:
    """``(additive part, end)`` of job ``o`` on ``p`` from ``start``, in weighted seconds."""
    t, end, pen = sched.contribution(problem, o, p, start)
    if makespan:
        return pen, end
    return t + pen, end


def _value(problem: Problem, total: float, end: float, makespan: bool) -> float:
    if makespan:
        return sched.combine(problem, 0.0, end, total)
    return total / problem.total_weight


def _rest_bound(
    s: _Search, prof: Profiles, depth: int, total: float, end: float
) -> tuple[float, float]:
    """Lower bound of the value of any completion of the prefix ``[0, depth)``.

    Each remaining job alone on ``prof`` (the prefix's profile): its best
    additive term and its earliest end, over its choices.
    """
    problem = s.problem
    for o in range(depth, len(s.choices)):
        best_t, best_e = INF, INF
        for p in s.choices[o]:
            start, _ = sched.place(prof, problem.options[o][p], problem.t0[o])
            t, e = _term(problem, o, p, start, s.makespan)
            best_t = min(best_t, t)
            best_e = min(best_e, e)
        total += best_t
        end = max(end, best_e)
    return total, end


def _dfs(
    s: _Search, prof: Profiles, depth: int, acc: tuple[float, float], parts: list[int]
) -> None:
    """Search below the prefix ``parts`` (jobs ``[0, depth)``), whose sums are ``acc``."""
    problem = s.problem
    total, end = acc
    if depth == len(s.choices):
        value = _value(problem, total, end, s.makespan)
        if value < s.best_value:
            s.best_value, s.best_parts = value, list(parts)
        return
    if s.nodes >= s.node_limit or s.clock() > s.deadline:
        s.stopped = True
        return
    children = []
    for p in s.choices[depth]:
        opt = problem.options[depth][p]
        start, picks = sched.place(prof, opt, problem.t0[depth])
        s.nodes += 1
        t, e = _term(problem, depth, p, start, s.makespan)
        child = prof.copy(picks)
        sched.commit(child, opt, start, picks)
        lb_total, lb_end = _rest_bound(s, child, depth + 1, total + t, max(end, e))
        children.append((_value(problem, lb_total, lb_end, s.makespan), p, child, t, e))
    children.sort(key=lambda c: (c[0], c[1]))
    for lb, p, child, t, e in children:
        if lb >= s.best_value - _REL_TOL * max(1.0, abs(s.best_value)):
            break
        parts.append(p)
        _dfs(s, child, depth + 1, (total + t, max(end, e)), parts)
        parts.pop()
        if s.stopped:
            return


def branch_and_bound(
    problem: Problem,
    *,
    node_limit: int = DEFAULT_NODE_LIMIT,
    time_limit: float = 60.0,
    incumbents: Sequence[Sequence[int]] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> ExactResult:
    """The assignment of ``problem``'s variable jobs that minimizes :meth:`Problem.evaluate`.

    ``incumbents`` (gene lists) start the search; the greedy plans are always
    added. Deterministic for a given ``node_limit`` unless ``time_limit`` stops it
    (measured on ``clock``, injectable for tests).
    """
    t0 = clock()
    choices = [
        [problem.fixed[o]] if problem.fixed[o] >= 0 else sorted(problem.options[o])
        for o in range(len(problem.options))
    ]
    s = _Search(
        problem,
        choices,
        node_limit,
        t0 + time_limit,
        problem.config.objective == "makespan",
        clock,
    )
    seeds = [*problem.initial_assignments().values(), *(list(g) for g in incumbents)]
    start_genes = min(seeds, key=problem.evaluate)
    start_value = problem.evaluate(start_genes)
    s.best_value = start_value
    s.best_parts = problem.parts_of(problem.repair(list(start_genes)))
    root_total, root_end = _rest_bound(s, problem.base, 0, 0.0, -INF)
    root = _value(problem, root_total, root_end, s.makespan)
    _dfs(s, problem.base, 0, (0.0, -INF), [])
    genes = [s.best_parts[o] for o in problem.var_pos]
    value = problem.evaluate(genes)
    if s.stopped:
        status = "time_limit" if clock() > s.deadline else "node_limit"
        bound = root
    else:
        status, bound = "optimal", value
    return ExactResult(
        status=status,
        genes=tuple(genes),
        objective=value,
        bound=min(bound, value),
        nodes=s.nodes,
        wall_s=clock() - t0,
        start_value=start_value,
    )


def solve(problem: Problem, *, seed: int, budget: Budget) -> Assignment:
    """Solver interface: the exact optimum, or past the limits the best found and a bound.

    The search gets half the budget; when it cannot prove optimality in it,
    ``auto`` gets the rest and the better plan is returned (status
    ``node_limit`` / ``time_limit``, with the gap to the root bound), so the
    answer is never worse than the greedy rules nor than ``auto``.
    """
    from slurmopt.optimize import auto

    node_limit = budget.max_evaluations or DEFAULT_NODE_LIMIT
    half = max(0.1, budget.seconds / 2)
    res = branch_and_bound(problem, node_limit=node_limit, time_limit=half, clock=budget.clock)
    genes, value, wall, via = res.genes, res.objective, res.wall_s, "branch-and-bound"
    if res.status != "optimal":
        rest = Budget(seconds=max(0.1, budget.seconds - res.wall_s), clock=budget.clock)
        other = auto.solve(problem, seed=seed, budget=rest)
        wall += other.wall_s
        if other.objective < value:
            genes, value, via = other.genes, other.objective, "auto"
    stats: dict[str, Any] = {
        "status": res.status,
        "method": "branch-and-bound over list scheduling",
        "plan_from": via,
        "bound": min(res.bound, value),
        "gap": 0.0 if res.status == "optimal" else _gap(value, res.bound),
        "search_nodes": res.nodes,
        "greedy_objective": res.start_value,
    }
    return Assignment(
        genes=tuple(genes),
        objective=value,
        solver="milp",
        seed=seed,
        feasible=problem.feasible(genes),
        wall_s=wall,
        stats=stats,
    )


def _gap(value: float, bound: float) -> float | None:
    if not (math.isfinite(value) and math.isfinite(bound)):
        return None
    return max(0.0, (value - bound) / max(abs(value), 1e-12))
