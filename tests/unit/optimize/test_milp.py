"""Exact MILP (HiGHS), LP relaxation, LP rounding; the MILP is a lower bound on every heuristic."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmopt.optimize import auto, ga, lp_round, milp, sa
from slurmopt.optimize.search import Budget
from slurmopt.optimize.static import StaticProblem, random_instance


def brute_force(p: StaticProblem) -> float:
    best = math.inf
    for genes in itertools.product(*p.choices):
        if p.feasible(list(genes)):
            best = min(best, p.evaluate(list(genes)))
    return best


def test_milp_matches_brute_force_on_a_hand_instance() -> None:
    # Cheapest for both jobs is partition 0, but it only holds one of them.
    p = StaticProblem([[1.0, 5.0], [2.0, 3.0]], [[1.0, 1.0]], [[1.0, 1.0]])
    res = milp.solve_milp(p, time_limit=10)
    assert res.status == "optimal"
    assert res.genes == (0, 1)
    assert res.objective == pytest.approx(4.0)
    assert res.bound == pytest.approx(4.0, rel=1e-6)
    assert res.gap is not None and res.gap <= 1e-6


def test_infeasible_instance_is_reported() -> None:
    p = StaticProblem([[1.0], [1.0]], [[1.0, 1.0]], [[1.0]])
    res = milp.solve_milp(p, time_limit=10)
    assert res.status == "infeasible"
    assert res.genes is None and res.objective is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), n_jobs=st.integers(2, 7), n_parts=st.integers(2, 3))
def test_milp_is_optimal_and_lp_is_a_bound(seed: int, n_jobs: int, n_parts: int) -> None:
    p = random_instance(n_jobs, n_parts, seed=seed)
    res = milp.solve_milp(p, time_limit=10)
    assert res.status == "optimal" and res.genes is not None
    assert p.feasible(list(res.genes))
    assert res.objective == pytest.approx(brute_force(p), rel=1e-6)
    lp = milp.solve_lp(p)
    assert lp.bound <= res.objective + 1e-6


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), n_jobs=st.integers(10, 30), n_parts=st.integers(2, 5))
def test_milp_optimum_is_below_every_heuristic(seed: int, n_jobs: int, n_parts: int) -> None:
    p = random_instance(n_jobs, n_parts, seed=seed)
    res = milp.solve_milp(p, time_limit=10)
    assert res.status == "optimal" and res.objective is not None
    budget = Budget(seconds=5.0, max_evaluations=3000)
    found = [
        ga.solve(p, seed=1, budget=budget),
        sa.solve(p, seed=1, budget=budget),
        auto.solve(p, seed=1, budget=budget),
        lp_round.solve(p, seed=1, budget=budget),
    ]
    for a in found:
        if a.feasible:
            assert res.objective <= a.objective + 1e-6 * abs(a.objective), a.solver
    for genes in p.initial_assignments().values():
        if p.feasible(genes):
            assert res.objective <= p.evaluate(genes) + 1e-6


def test_time_limit_reports_bound_and_gap() -> None:
    p = random_instance(1000, 50, seed=7)
    res = milp.solve_milp(p, time_limit=0.5)
    assert res.status == "time_limit"
    assert res.wall_s < 5.0
    if res.objective is not None:
        assert res.gap is not None and res.gap >= 0.0
        assert res.bound <= res.objective + 1e-6


def test_lp_rounding_is_feasible_and_above_the_bound() -> None:
    p = random_instance(300, 8, seed=4)
    genes, stats = lp_round.round_lp(p)
    assert p.feasible(genes)
    assert p.evaluate(genes) >= stats["lp_bound"] - 1e-6
    assert stats["split_jobs"] <= p.n_kinds * p.n_parts


def test_solver_interface_returns_assignments() -> None:
    p = random_instance(40, 3, seed=9)
    a = milp.solve(p, seed=3, budget=Budget(seconds=10))
    assert a.solver == "milp" and a.feasible and a.stats["status"] == "optimal"
    assert a.objective == pytest.approx(p.evaluate(list(a.genes)))
    r = lp_round.solve(p, seed=3, budget=Budget(seconds=10))
    assert r.solver == "lp-round" and r.objective >= a.objective - 1e-6


class _NoStaticForm:
    n_jobs = 1
    n_parts = 1
    choices = ((0,),)


def test_problem_without_static_form_is_refused() -> None:
    with pytest.raises(ValueError):
        milp.solve(_NoStaticForm(), seed=0, budget=Budget(seconds=1))  # type: ignore[arg-type]
