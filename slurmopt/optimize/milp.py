"""Exact reference: the static form as a MILP, solved by HiGHS (``scipy.optimize.milp``).

One binary ``x_jp`` per allowed (job, partition) pair, one assignment row per
job (``sum_p x_jp = 1``) and one capacity row per (kind, partition). HiGHS
stops at a time limit; :class:`MilpResult` then carries the best plan found,
the dual bound and the remaining relative gap, so the heuristics' gap can
always be measured against a proven bound.

The LP relaxation (:func:`solve_lp`) gives a lower bound and the fractional
solution that :mod:`slurmopt.optimize.lp_round` rounds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from slurmopt.optimize.search import Assignable, Assignment, Budget
from slurmopt.optimize.static import StaticProblem

log = logging.getLogger(__name__)

_STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded", 4: "error"}


@dataclass(frozen=True, slots=True)
class MilpResult:
    """What HiGHS found.

    Attributes:
        status: ``optimal``, ``time_limit`` (stopped with or without a plan),
            ``infeasible``, ``unbounded`` or ``error``.
        genes: the best plan found (partition index per job), or None.
        objective: its cost, or None.
        bound: the proven lower bound (dual bound; the LP value for an LP).
        gap: ``(objective - bound) / |objective|``, or None without a plan.
        wall_s: seconds spent in HiGHS.
        nodes: branch-and-bound nodes explored.
        message: HiGHS's message.
    """

    status: str
    genes: tuple[int, ...] | None
    objective: float | None
    bound: float
    gap: float | None
    wall_s: float
    nodes: int = 0
    message: str = ""
    x: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    """The raw solution vector (for an LP: fractional)."""


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to stderr while HiGHS runs.

    HiGHS's MIP solver sometimes prints debug lines straight to fd 1
    (``HighsMipSolverData::transformNewIntegerFeasibleSolution``), which would
    corrupt ``slurmopt plan --json``. Not thread-safe (it swaps a process-wide
    descriptor); a no-op where stdout has no descriptor.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _Model:
    """The sparse matrices of a static problem, built once."""

    def __init__(self, prob: StaticProblem) -> None:
        jobs, parts = np.nonzero(np.isfinite(prob.cost))
        self.prob = prob
        self.jobs = jobs
        self.parts = parts
        n = len(jobs)
        self.c = prob.cost[jobs, parts]
        cols = np.arange(n)
        assign = csr_array((np.ones(n), (jobs, cols)), shape=(prob.n_jobs, n))
        cap_rows = []
        for k in range(prob.n_kinds):
            cap_rows.append(
                csr_array(
                    (prob.demand[k, jobs, parts], (parts, cols)),
                    shape=(prob.n_parts, n),
                )
            )
        self.constraints = [
            LinearConstraint(assign, 1.0, 1.0),
            *(LinearConstraint(rows, -np.inf, prob.capacity[k]) for k, rows in enumerate(cap_rows)),
        ]
        self.n = n

    def genes(self, x: npt.NDArray[np.float64]) -> tuple[int, ...]:
        """Partition per job from a (near-)integral solution vector."""
        out = np.full(self.prob.n_jobs, -1, dtype=np.int64)
        best = np.full(self.prob.n_jobs, -1.0)
        for v, j, p in zip(x, self.jobs, self.parts, strict=True):
            if v > best[j]:
                best[j] = v
                out[j] = p
        return tuple(int(g) for g in out)

    def fractional(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The solution vector as a dense ``(J, P)`` matrix."""
        out = np.zeros((self.prob.n_jobs, self.prob.n_parts))
        out[self.jobs, self.parts] = x
        return out


def _run(
    prob: StaticProblem,
    *,
    integral: bool,
    time_limit: float,
    rel_gap: float,
    node_limit: int | None = None,
) -> MilpResult:
    model = _Model(prob)
    options: dict[str, Any] = {"time_limit": float(time_limit), "disp": False}
    if integral:
        options["mip_rel_gap"] = rel_gap
        if node_limit is not None:
            options["node_limit"] = int(node_limit)
    t0 = time.perf_counter()
    with quiet_stdout():
        res = milp(
            model.c,
            integrality=np.ones(model.n) if integral else None,
            bounds=Bounds(0.0, 1.0),
            constraints=model.constraints,
            options=options,
        )
    wall = time.perf_counter() - t0
    status = _STATUS.get(int(res.status), "error")
    x = None if res.x is None else np.asarray(res.x, dtype=np.float64)
    objective = None if res.fun is None or x is None else float(res.fun)
    if integral:
        bound_raw = getattr(res, "mip_dual_bound", None)
        bound = float(bound_raw) if bound_raw is not None else -math.inf
    else:
        bound = objective if objective is not None else -math.inf
    gap = None
    if objective is not None and math.isfinite(bound):
        gap = max(0.0, (objective - bound) / max(abs(objective), 1e-12))
    genes = model.genes(x) if (x is not None and integral) else None
    log.debug("HiGHS %s: status=%s obj=%s bound=%s in %.2fs", prob, status, objective, bound, wall)
    return MilpResult(
        status=status,
        genes=genes,
        objective=objective,
        bound=bound,
        gap=gap,
        wall_s=wall,
        nodes=int(getattr(res, "mip_node_count", 0) or 0),
        message=str(res.message),
        x=x if not integral else None,
    )


def solve_milp(
    prob: StaticProblem,
    *,
    time_limit: float = 60.0,
    rel_gap: float = 1e-6,
    node_limit: int | None = None,
) -> MilpResult:
    """Solve the static form exactly (up to ``rel_gap``) or until a limit.

    ``node_limit`` (branch-and-bound nodes) makes a limited run deterministic;
    ``time_limit`` (seconds) is the safety stop.
    """
    return _run(prob, integral=True, time_limit=time_limit, rel_gap=rel_gap, node_limit=node_limit)


@dataclass(frozen=True, slots=True)
class LpResult:
    """The LP relaxation: its value (a lower bound) and its ``(J, P)`` solution."""

    status: str
    bound: float
    x: npt.NDArray[np.float64] | None
    wall_s: float


def solve_lp(prob: StaticProblem, *, time_limit: float = 60.0) -> LpResult:
    """Solve the LP relaxation (``0 <= x_jp <= 1``)."""
    res = _run(prob, integral=False, time_limit=time_limit, rel_gap=0.0)
    x = None if res.x is None else _Model(prob).fractional(res.x)
    return LpResult(status=res.status, bound=res.bound, x=x, wall_s=res.wall_s)


def static_form_of(problem: Assignable) -> StaticProblem | None:
    """``problem`` itself if static, else its ``static_form()`` if it has one."""
    if isinstance(problem, StaticProblem):
        return problem
    fn = getattr(problem, "static_form", None)
    if fn is None:
        return None
    form = fn()
    return form if isinstance(form, StaticProblem) else None


def solve(problem: Assignable, *, seed: int, budget: Budget) -> Assignment:
    """The solver interface of ``--policy milp``: the exact reference.

    On a time-aware :class:`~slurmopt.optimize.problem.Problem` this is the
    exact optimum of the objective every other solver optimizes
    (:meth:`Problem.evaluate`), found by :mod:`slurmopt.optimize.exact` (the
    static MILP optimizes a different objective; see there). On a
    :class:`StaticProblem` it is HiGHS on the GAP itself.

    Raises:
        ValueError: the problem is neither, or HiGHS found no plan of a static problem.
    """
    from slurmopt.optimize.problem import Problem

    if isinstance(problem, Problem):
        from slurmopt.optimize import exact

        return exact.solve(problem, seed=seed, budget=budget)
    if not isinstance(problem, StaticProblem):
        raise ValueError("milp: the problem is neither time-aware nor static")
    return solve_static(problem, seed=seed, budget=budget)


def solve_static(problem: Assignable, *, seed: int, budget: Budget) -> Assignment:
    """``--policy milp-static``: HiGHS on the problem's static GAP form, scored by the problem.

    On a time-aware problem this is a heuristic (the static form's cost and
    capacity are approximations; see :mod:`slurmopt.optimize.exact`); its
    plan is scored with the problem's own objective.

    Raises:
        ValueError: the problem has no static form, or the static form has no
            feasible plan (the message says which).
    """
    form = static_form_of(problem)
    if form is None:
        raise ValueError("milp-static: the problem has no static form")
    res = solve_milp(form, time_limit=max(0.1, budget.seconds))
    if res.genes is None:
        raise ValueError(
            f"milp-static: the static form has no plan ({res.status}); "
            "use --policy milp for the exact optimum of the time-aware problem"
        )
    genes = list(res.genes)
    return Assignment(
        genes=tuple(genes),
        objective=problem.evaluate(genes),
        solver="milp-static" if form is not problem else "milp",
        seed=seed,
        feasible=problem.feasible(genes),
        wall_s=res.wall_s,
        stats={
            "status": res.status,
            "static_objective": res.objective,
            "bound": res.bound,
            "gap": res.gap,
            "nodes": res.nodes,
        },
    )
