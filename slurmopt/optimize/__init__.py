"""slurmopt.optimize: the placement problem and its solvers behind one signature.

Public entry points:

* :func:`solve` (problem, policy) -> :class:`~slurmopt.optimize.search.Assignment`;
* :func:`make_plan` (problem, policy) -> :class:`~slurmopt.model.Plan`;
* :data:`POLICIES`: policy name -> ``"module:function"`` of a solver
  ``solve(problem, *, seed, budget) -> Assignment``, imported on first use.

Nothing heavy is imported here (no numpy, scipy, deap, simanneal): optsub
imports this package on its submit path. Solver modules load lazily; a policy
whose module is missing or broken raises :class:`PolicyUnavailable`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slurmopt.errors import SlurmoptError
from slurmopt.lazylog import get_logger

if TYPE_CHECKING:
    from slurmopt.model import Plan
    from slurmopt.optimize.problem import Problem
    from slurmopt.optimize.search import Assignment as Assignment
    from slurmopt.optimize.search import Budget as Budget


def __getattr__(name: str) -> Any:
    """``Assignment`` and ``Budget`` on first use (optsub's submit path needs neither)."""
    if name in ("Assignment", "Budget"):
        from slurmopt.optimize import search

        return getattr(search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


log = get_logger(__name__)

POLICIES: dict[str, str] = {
    "current": "slurmopt.optimize.greedy:solve_current",
    "round-robin": "slurmopt.optimize.greedy:solve_round_robin",
    "hash": "slurmopt.optimize.greedy:solve_hash",
    "least-loaded": "slurmopt.optimize.greedy:solve_least_loaded",
    "earliest-start": "slurmopt.optimize.greedy:solve_earliest_start",
    "earliest-completion": "slurmopt.optimize.greedy:solve_earliest_completion",
    "best-greedy": "slurmopt.optimize.greedy:solve_best_greedy",
    "sa": "slurmopt.optimize.sa:solve",
    "ga": "slurmopt.optimize.ga:solve",
    "milp": "slurmopt.optimize.milp:solve",
    "milp-static": "slurmopt.optimize.milp:solve_static",
    "milp-time": "slurmopt.optimize.milp_time:solve",
    "lp-round": "slurmopt.optimize.lp_round:solve",
    "auto": "slurmopt.optimize.auto:solve",
}
"""Policy name -> ``"module:function"``. Greedy ones never need numpy."""

GREEDY_POLICIES = (
    "current",
    "round-robin",
    "hash",
    "least-loaded",
    "earliest-start",
    "earliest-completion",
)

Solver = Callable[..., "Assignment"]


class PolicyUnavailable(SlurmoptError):
    """An unknown policy, or one whose solver module cannot be imported."""

    exit_code = 2


def get_solver(policy: str) -> Solver:
    """The solver function of ``policy``.

    Raises:
        PolicyUnavailable: unknown name, or its module is missing or fails to import.
    """
    target = POLICIES.get(policy)
    if target is None:
        raise PolicyUnavailable(f"unknown policy {policy!r} (known: {', '.join(sorted(POLICIES))})")
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        from slurmopt.extras import missing_extra

        err = missing_extra(exc, f"policy {policy!r}")
        raise PolicyUnavailable(str(err or f"policy {policy!r} is not available: {exc}")) from exc
    except AttributeError as exc:
        raise PolicyUnavailable(f"policy {policy!r}: {target} not found") from exc
    if not callable(fn):
        raise PolicyUnavailable(f"policy {policy!r}: {target} is not callable")
    return fn  # type: ignore[no-any-return]


def available_policies() -> list[str]:
    """Policies whose solver imports right now (imports them: not for hot paths)."""
    out = []
    for name in POLICIES:
        try:
            get_solver(name)
        except PolicyUnavailable:
            continue
        out.append(name)
    return out


def solve(
    problem: Any, policy: str = "auto", *, seed: int = 0, budget: Budget | None = None
) -> Assignment:
    """Run one policy on ``problem`` (any ``Assignable``).

    Raises:
        PolicyUnavailable: see :func:`get_solver`.
    """
    from slurmopt.optimize.search import Budget

    fn = get_solver(policy)
    return fn(problem, seed=seed, budget=budget or Budget())


def make_plan(
    problem: Problem, policy: str = "auto", *, seed: int = 0, budget: Budget | None = None
) -> Plan:
    """Solve ``problem`` with ``policy`` and return its :class:`~slurmopt.model.Plan`.

    The plan's ``wall_s`` covers the solve and the final schedule; its stats
    carry the solver's own plus the problem's sizes.

    Raises:
        PolicyUnavailable: see :func:`get_solver`.
    """
    t = time.perf_counter()
    a = solve(problem, policy, seed=seed, budget=budget)
    stats = {**a.stats, "policy": policy, "solver_wall_s": a.wall_s, "feasible": a.feasible}
    plan = problem.plan_from(a.genes, solver=a.solver, seed=seed, stats=stats)
    wall = time.perf_counter() - t
    return type(plan)(
        plan.placements, plan.objective, plan.solver, seed, wall, plan.stats, plan.unplaced
    )


__all__ = [
    "GREEDY_POLICIES",
    "POLICIES",
    "Assignment",
    "Budget",
    "PolicyUnavailable",
    "available_policies",
    "get_solver",
    "make_plan",
    "solve",
]
