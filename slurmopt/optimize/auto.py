"""The default policy: best seed, then GA and SA polish, best plan found wins.

1. Seeds: the problem's ``initial_assignments()`` (the greedy plans of the
   time-aware problem) and, where the problem has a static form, LP rounding
   (:mod:`slurmopt.optimize.lp_round`), repaired by the problem itself.
2. On a :class:`~slurmopt.optimize.static.StaticProblem` only: MILP-based
   large-neighbourhood search from the best seed (re-solve up to 60 jobs of
   three partitions exactly, repeat), ``LNS_SHARE`` of the search.
3. GA (:mod:`slurmopt.optimize.ga`) with every seed in its first population,
   ``GA_SHARE`` of the rest.
4. SA (:mod:`slurmopt.optimize.sa`) from the GA's best for the rest.
5. The best feasible plan among the seed (after LNS), the GA's and the
   SA's answer: so ``auto`` is never worse than its best seed.

Same seed, same input -> same plan, as long as the step budgets end before
the wall-clock safety stops (``stats["stopped_by"]`` of each stage says).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slurmopt.optimize import ga, sa
from slurmopt.optimize.search import (
    Assignable,
    Assignment,
    Budget,
    best_of,
    cheapest_assignment,
    seed_assignments,
    valid_genes,
)
from slurmopt.optimize.static import StaticProblem

log = logging.getLogger(__name__)

SEARCH_SHARE = 0.85
"""Share of the budget for GA + SA; the rest is left for the seeds (LP)."""
GA_SHARE = 0.6
"""Share of the search the GA gets; SA gets the rest."""
LNS_SHARE = 0.75
"""On a :class:`StaticProblem`: share of the search for the MILP-based LNS
(:func:`slurmopt.optimize.lp_round.lns_polish`), before GA and SA."""
LNS_UNITS = 1500
"""Evaluation units one LNS step counts for when ``budget.max_evaluations`` is set."""


def _lp_seed(
    problem: Assignable, seconds: float, dive_seconds: float
) -> tuple[list[int] | None, dict[str, Any]]:
    """LP rounding on the problem's static form, or ``(None, reason)``.

    ``seconds`` bounds the LP, ``dive_seconds`` the fix-and-resolve dive.
    """
    try:
        from slurmopt.optimize.lp_round import round_lp
        from slurmopt.optimize.milp import solve_lp, static_form_of
    except ImportError as exc:  # pragma: no cover - scipy is a dependency
        return None, {"lp_round": f"unavailable: {exc}"}
    form = static_form_of(problem)
    if form is None:
        return None, {"lp_round": "no static form"}
    try:
        genes, stats = round_lp(
            form, solve_lp(form, time_limit=max(0.1, seconds)), resolve_s=dive_seconds
        )
    except ValueError as exc:
        return None, {"lp_round": str(exc)}
    if form is not problem and not problem.feasible(genes):
        genes = problem.repair(genes)
    if not valid_genes(problem, genes):
        return None, {"lp_round": "rounded plan not valid for the problem"}
    return genes, {"lp_round": dict(stats)}


def solve(
    problem: Assignable,
    *,
    seed: int,
    budget: Budget,
    initial: Sequence[int] | None = None,
    use_lp: bool = True,
) -> Assignment:
    """Seeds, then GA, then SA, within ``budget``; the best plan found.

    Args:
        problem: any :class:`~slurmopt.optimize.search.Assignable`.
        seed: random seed (GA and SA).
        budget: time / evaluation budget for the whole policy.
        initial: an extra seed (e.g. the current placement).
        use_lp: add the LP-rounding seed where the problem has a static form.
    """
    t0 = budget.clock()
    seeds: list[tuple[str, list[int]]] = seed_assignments(problem)
    if initial is not None and valid_genes(problem, initial):
        seeds.insert(0, ("initial", [int(g) for g in initial]))
    stats: dict[str, Any] = {}
    if use_lp:
        lp_genes, lp_stats = _lp_seed(problem, budget.seconds * 0.5, budget.seconds * 0.2)
        stats.update(lp_stats)
        if lp_genes is not None:
            seeds.append(("lp-round", lp_genes))
    if not seeds:
        seeds.append(("first-choice", problem.repair(cheapest_assignment(problem))))
    i, seed_obj, _ = best_of(problem, [g for _, g in seeds])
    seed_name, seed_genes = seeds[i]
    stats["seed"] = seed_name
    stats["seed_objective"] = seed_obj
    stats["seeds"] = [n for n, _ in seeds]

    # Step budgets come from the whole budget (deterministic); the wall clock
    # only enforces the overall deadline.
    hard = t0 + budget.seconds * 0.97
    search = SEARCH_SHARE
    if isinstance(problem, StaticProblem) and problem.feasible(seed_genes):
        from slurmopt.optimize.lp_round import lns_polish, lns_steps

        share = LNS_SHARE * search
        steps = (
            max(1, int(budget.max_evaluations * share / LNS_UNITS))
            if budget.max_evaluations is not None
            else lns_steps(problem, budget.seconds * share)
        )
        seed_genes, lns_stats = lns_polish(
            problem,
            list(seed_genes),
            seed=seed,
            steps=steps,
            deadline=min(hard, budget.clock() + budget.seconds * share),
            clock=budget.clock,
        )
        stats["lns"] = {**lns_stats, "step_budget": steps}
        stats["lns_objective"] = problem.evaluate(seed_genes)
        search -= share
    ga_res = ga.solve(
        problem,
        seed=seed,
        budget=budget,
        initial=seed_genes,
        share=search * GA_SHARE,
        hard_deadline=hard,
    )
    sa_res = sa.solve(
        problem,
        seed=seed,
        budget=budget,
        initial=ga_res.genes,
        share=search * (1.0 - GA_SHARE),
        hard_deadline=hard,
    )
    cands = [seed_genes, list(ga_res.genes), list(sa_res.genes)]
    j, obj, ok = best_of(problem, cands)
    stats["ga"] = {k: v for k, v in ga_res.stats.items() if k != "logbook"}
    stats["ga_objective"] = ga_res.objective
    stats["sa"] = dict(sa_res.stats)
    stats["sa_objective"] = sa_res.objective
    stats["winner"] = ("seed" if "lns" not in stats else "lns", "ga", "sa")[j]
    return Assignment(
        genes=tuple(cands[j]),
        objective=obj,
        solver="auto",
        seed=seed,
        feasible=ok,
        wall_s=budget.clock() - t0,
        stats=stats,
    )
