"""LP rounding: dive (fix-and-resolve) and the MILP-based LNS polish."""

from __future__ import annotations

import time

import pytest

from slurmopt.optimize import lp_round
from slurmopt.optimize.milp import solve_lp, solve_milp
from slurmopt.optimize.search import valid_genes
from slurmopt.optimize.static import random_instance


@pytest.mark.parametrize(("n_jobs", "n_parts", "seed"), [(200, 8, 1), (300, 12, 2), (120, 4, 3)])
def test_rounding_stages_only_improve(n_jobs: int, n_parts: int, seed: int) -> None:
    p = random_instance(n_jobs, n_parts, seed=seed)
    lp = solve_lp(p)
    plain, s0 = lp_round.round_lp(p, lp, resolve=False)
    dived, s1 = lp_round.round_lp(p, lp, resolve=True)
    assert p.feasible(plain) and p.feasible(dived)
    assert valid_genes(p, dived)
    assert p.evaluate(dived) <= p.evaluate(plain) + 1e-9
    assert s1["resolved_objective"] == pytest.approx(p.evaluate(dived))
    assert p.evaluate(dived) >= lp.bound - 1e-6
    assert "resolved_objective" not in s0


def test_lns_improves_keeps_feasibility_and_is_deterministic() -> None:
    p = random_instance(80, 5, seed=5)
    start, _ = lp_round.round_lp(p, resolve=False)
    far = time.perf_counter() + 60
    a, sa_ = lp_round.lns_polish(p, list(start), seed=3, steps=15, deadline=far)
    b, _ = lp_round.lns_polish(p, list(start), seed=3, steps=15, deadline=far)
    assert a == b
    assert p.feasible(a)
    assert p.evaluate(a) <= p.evaluate(start) + 1e-9
    assert sa_["steps"] == 15 and sa_["stopped_by"] == "steps"
    opt = solve_milp(p, time_limit=20)
    assert opt.objective is not None and opt.objective <= p.evaluate(a) + 1e-6


def test_lns_refuses_infeasible_start() -> None:
    p = random_instance(60, 4, seed=2)
    bad = [min(c, key=lambda q, j=j: p.cost[j, q]) for j, c in enumerate(p.choices)]
    assert not p.feasible(bad)
    out, stats = lp_round.lns_polish(p, bad, seed=0, steps=5, deadline=time.perf_counter() + 10)
    assert out == bad and stats["stopped_by"] == "not applicable"


def test_lns_step_budget_scales_with_time() -> None:
    p = random_instance(1000, 50, seed=1)
    assert lp_round.lns_steps(p, 2.0) == pytest.approx(2 * lp_round.lns_steps(p, 1.0), abs=1)
