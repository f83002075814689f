"""LP relaxation + rounding + repair: a strong seed for the heuristics.

A basic optimal solution of the GAP's LP relaxation has at most K x P jobs
split over several partitions (one per tight capacity row); every other job
is already integral. So rounding changes few jobs:

1. solve the LP (HiGHS);
2. keep every integral job where the LP put it;
3. place the split jobs, largest LP share first, in the partition with the
   largest share where they still fit, else the cheapest where they fit,
   else their largest share;
4. repair what still overflows (:meth:`StaticProblem.repair`);
5. fix-and-resolve (:func:`fix_and_resolve`): free the split jobs and the
   jobs that lose least by moving in the partitions they touch, and dive
   through that small LP (fix what it places wholly and the largest split
   share, re-solve) on the capacity left by the fixed jobs; keep the result
   if it is better.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from slurmopt.optimize.milp import LpResult, solve_lp, static_form_of
from slurmopt.optimize.search import Assignable, Assignment, Budget, best_of
from slurmopt.optimize.static import StaticProblem

log = logging.getLogger(__name__)

_INTEGRAL = 1.0 - 1e-6


def round_lp(
    prob: StaticProblem,
    lp: LpResult | None = None,
    *,
    resolve: bool = True,
    resolve_s: float = 2.0,
) -> tuple[list[int], dict[str, float]]:
    """Round the LP solution of ``prob`` into a (repaired) assignment.

    Returns the genes and statistics: ``lp_bound``, ``split_jobs``,
    ``rounded_objective`` (before repair), ``repaired_objective``,
    ``resolved_objective`` (after fix-and-resolve, when ``resolve``), ``lp_s``.

    Raises:
        ValueError: the LP has no solution (infeasible instance).
    """
    if lp is None:
        lp = solve_lp(prob)
    if lp.x is None:
        raise ValueError(f"lp-round: LP relaxation has no solution ({lp.status})")
    x = lp.x
    share = x.max(axis=1)
    genes = [int(g) for g in x.argmax(axis=1)]
    lp_genes = list(genes)
    split = [j for j in range(prob.n_jobs) if share[j] < _INTEGRAL]
    keep = [j for j in range(prob.n_jobs) if share[j] >= _INTEGRAL]
    load = np.zeros_like(prob.capacity)
    for j in keep:
        load[:, genes[j]] += prob.demand[:, j, genes[j]]
    tol = 1e-9 * (1.0 + np.abs(prob.capacity))
    for j in sorted(split, key=lambda j: (-share[j], j)):
        order = sorted(prob.choices[j], key=lambda p: (-x[j, p], prob.cost[j, p], p))
        fits = [
            p
            for p in order
            if (load[:, p] + prob.demand[:, j, p] <= prob.capacity[:, p] + tol[:, p]).all()
        ]
        if fits:
            on_lp = [p for p in fits if x[j, p] > 1e-9]
            p = on_lp[0] if on_lp else min(fits, key=lambda q: (prob.cost[j, q], q))
        else:
            p = order[0]
        genes[j] = int(p)
        load[:, p] += prob.demand[:, j, p]
    rounded = prob.evaluate(genes)
    repaired = prob.repair(genes) if not prob.feasible(genes) else genes
    stats = {
        "lp_bound": lp.bound,
        "split_jobs": float(len(split)),
        "rounded_objective": rounded,
        "repaired_objective": prob.evaluate(repaired),
        "lp_s": lp.wall_s,
    }
    if resolve and split:
        better = fix_and_resolve(prob, lp_genes, x, split, time_limit=resolve_s)
        if better is not None and not prob.feasible(better):
            better = prob.repair(better)
        if better is not None and prob.feasible(better):
            obj = prob.evaluate(better)
            if obj < stats["repaired_objective"] or not prob.feasible(repaired):
                repaired = better
        stats["resolved_objective"] = prob.evaluate(repaired)
    return repaired, stats


DIVE_FIX_SHARE = 0.8
"""A split job with at least this LP share is fixed at once while diving."""
RESOLVE_JOBS = 250
"""At most this many jobs are freed (split jobs first, then neighbours)."""


def fix_and_resolve(
    prob: StaticProblem,
    genes: list[int],
    x: npt.NDArray[np.float64],
    split: list[int],
    *,
    time_limit: float = 2.0,
) -> list[int] | None:
    """LP diving on a neighbourhood of the split jobs; everything else stays put.

    Frees the jobs the LP split, plus, in each partition they touch, the jobs
    that lose least by leaving (smallest second-best minus own cost), at most
    ``RESOLVE_JOBS`` in all. Then dives: solve the LP of the freed jobs on the
    capacity the fixed jobs leave (small, milliseconds), fix every job it
    places wholly and the split job with the largest share, repeat. Jobs left
    when a dive LP turns infeasible take their last LP's largest share (the
    caller repairs). Deterministic; ``time_limit`` bounds the whole dive.
    Returns the new genes, or None when the first LP is infeasible.
    """
    t0 = time.perf_counter()
    touched = sorted({int(p) for j in split for p in np.flatnonzero(x[j] > 1e-9)})
    free = set(split)
    per_part = max(2, (RESOLVE_JOBS - len(split)) // max(1, len(touched)))
    for p in touched:
        inside = [j for j in range(prob.n_jobs) if genes[j] == p and j not in free]

        def loss(j: int) -> float:
            alt = [prob.cost[j, q] for q in prob.choices[j] if q != genes[j]]
            return (min(alt) - prob.cost[j, genes[j]]) if alt else math.inf

        inside.sort(key=lambda j: (loss(j), j))
        free.update(inside[:per_part])
    out = list(genes)
    load = np.zeros_like(prob.capacity)
    for j in range(prob.n_jobs):
        if j not in free:
            load[:, genes[j]] += prob.demand[:, j, genes[j]]
    rounds = 0
    while free:
        rounds += 1
        sub = sorted(free)
        left = np.maximum(prob.capacity - load, 0.0)
        lp = solve_lp(StaticProblem(prob.cost[sub], prob.demand[:, sub, :], left))
        if lp.x is None:
            if rounds == 1:
                return None
            break
        xs = lp.x
        share = xs.max(axis=1)
        best = xs.argmax(axis=1)
        for r, j in enumerate(sub):
            out[j] = int(best[r])
        frac = [r for r in range(len(sub)) if share[r] < _INTEGRAL]
        done = [r for r in range(len(sub)) if share[r] >= _INTEGRAL]
        if frac:
            top = max(frac, key=lambda r: (share[r], -prob.cost[sub[r], best[r]], -r))
            done.extend(r for r in frac if r == top or share[r] >= DIVE_FIX_SHARE)
        for r in done:
            j, p = sub[r], int(best[r])
            load[:, p] += prob.demand[:, j, p]
            free.discard(j)
        if not frac or time.perf_counter() - t0 > time_limit:
            break
    log.debug("fix-and-resolve: %d dive rounds, %d jobs left", rounds, len(free))
    return out


def solve(problem: Assignable, *, seed: int, budget: Budget) -> Assignment:
    """The ``lp-round`` policy: round the LP of the problem's static form, then repair.

    On a time-aware problem the genes come from its static form and are
    repaired and scored by the problem itself. ``seed`` is recorded only (the
    method is deterministic).

    Raises:
        ValueError: the problem has no static form, or its LP has no solution.
    """
    t0 = time.perf_counter()
    form = static_form_of(problem)
    if form is None:
        raise ValueError("lp-round: the problem has no static form")
    genes, stats = round_lp(form, solve_lp(form, time_limit=max(0.1, budget.seconds)))
    if form is not problem and not problem.feasible(genes):
        genes = problem.repair(genes)
    _, obj, ok = best_of(problem, [genes])
    if not math.isfinite(obj):
        log.warning("lp-round: rounded plan scores %s", obj)
    return Assignment(
        genes=tuple(genes),
        objective=obj,
        solver="lp-round",
        seed=seed,
        feasible=ok,
        wall_s=time.perf_counter() - t0,
        stats=dict(stats),
    )


LNS_PARTS = 3
"""Partitions re-optimized together in one large-neighbourhood step."""
LNS_STEP_S = (3e-3, 1.5e-4)
"""Seconds per LNS step on the reference machine: fixed + per freed job (measured)."""
LNS_MAX_JOBS = 60
"""Free at most this many of the chosen partitions' jobs, drawn at random (0: all).

Three partitions with 60 freed jobs beat two partitions with all their jobs
and four or six with 60 on 3 of 4 test instances (3 s polish from LP rounding)."""
LNS_NODES = 500
"""Branch-and-bound node limit of an LNS sub-MILP (keeps it deterministic)."""


def lns_steps(prob: StaticProblem, seconds: float) -> int:
    """Deterministic LNS step count for ``seconds`` (75 % of the calibrated rate)."""
    m = min(LNS_PARTS, prob.n_parts)
    freed = m * prob.n_jobs / max(1, prob.n_parts)
    if LNS_MAX_JOBS:
        freed = min(freed, LNS_MAX_JOBS)
    per_step = LNS_STEP_S[0] + LNS_STEP_S[1] * freed
    return max(1, int(0.75 * seconds / per_step))


def lns_polish(
    prob: StaticProblem,
    genes: list[int],
    *,
    seed: int,
    steps: int,
    deadline: float,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[int], dict[str, Any]]:
    """MILP-based large-neighbourhood search on the static form.

    Each step frees the jobs in ``LNS_PARTS`` partitions drawn at random
    (seeded; at most ``LNS_MAX_JOBS`` of them, drawn too) and re-solves
    that sub-GAP exactly with HiGHS (node-limited, so the result does not
    depend on the clock unless the safety time limit hits), keeping the new
    placement when it costs less. ``genes`` must be feasible; the result
    stays feasible.

    Returns the genes and statistics (``steps``, ``improved``, ``stopped_by``).
    """
    from slurmopt.optimize.milp import solve_milp

    rng = random.Random(seed)
    cur = list(genes)
    improved = 0
    done = 0
    stopped_by = "steps"
    m = min(LNS_PARTS, prob.n_parts)
    if m < 2 or not prob.feasible(cur):
        return cur, {"steps": 0, "improved": 0, "stopped_by": "not applicable"}
    for _ in range(steps):
        if clock() >= deadline:
            stopped_by = "deadline"
            break
        done += 1
        parts = sorted(rng.sample(range(prob.n_parts), m))
        pset = set(parts)
        sub = [j for j in range(prob.n_jobs) if cur[j] in pset]
        if LNS_MAX_JOBS and len(sub) > LNS_MAX_JOBS:
            sub = sorted(rng.sample(sub, LNS_MAX_JOBS))
        if len(sub) < 2:
            continue
        cost = np.full((len(sub), prob.n_parts), np.inf)
        for r, j in enumerate(sub):
            for p in parts:
                cost[r, p] = prob.cost[j, p]
        # Jobs outside ``parts`` never use their capacity; jobs of ``parts``
        # left out of ``sub`` keep theirs.
        left = prob.capacity.copy()
        kept = set(sub)
        for j in range(prob.n_jobs):
            if cur[j] in pset and j not in kept:
                left[:, cur[j]] -= prob.demand[:, j, cur[j]]
        left = np.maximum(left, 0.0)
        old = float(sum(prob.cost[j, cur[j]] for j in sub))
        res = solve_milp(
            StaticProblem(cost, prob.demand[:, sub, :], left),
            time_limit=max(0.05, min(1.0, deadline - clock())),
            rel_gap=1e-9,
            node_limit=LNS_NODES,
        )
        if res.genes is None or res.objective is None or res.objective >= old - 1e-9:
            continue
        trial = list(cur)
        for j, g in zip(sub, res.genes, strict=True):
            trial[j] = int(g)
        if prob.feasible(trial):
            cur = trial
            improved += 1
    return cur, {"steps": done, "improved": improved, "stopped_by": stopped_by}
