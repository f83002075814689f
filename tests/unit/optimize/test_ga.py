"""GA on DEAP: feasibility, seeding, elitism, determinism, budget, no creator globals."""

from __future__ import annotations

import random

import pytest
from deap import creator

from slurmopt.optimize import ga
from slurmopt.optimize.search import Budget, valid_genes
from slurmopt.optimize.static import random_instance
from tests.unit.optimize.ticking import Ticking


def test_result_is_feasible_and_not_worse_than_its_seeds() -> None:
    p = random_instance(150, 6, seed=1)
    a = ga.solve(p, seed=3, budget=Budget(seconds=10, max_evaluations=60_000))
    assert a.solver == "ga" and a.feasible and valid_genes(p, a.genes)
    assert a.objective == pytest.approx(p.evaluate(list(a.genes)))
    best_seed = min(p.evaluate(g) for g in p.initial_assignments().values() if p.feasible(g))
    assert a.objective <= best_seed + 1e-9
    assert a.stats["generations"] == a.stats["generation_budget"] >= 1
    assert a.stats["logbook"] and "min" in a.stats["logbook"][-1]


def test_initial_plan_is_kept_by_elitism() -> None:
    p = random_instance(100, 5, seed=2)
    lp_like = p.initial_assignments()["regret"]
    a = ga.solve(p, seed=0, budget=Budget(max_evaluations=5_000), initial=lp_like)
    assert a.objective <= p.evaluate(lp_like) + 1e-9


def test_same_seed_same_plan() -> None:
    p = random_instance(120, 5, seed=4)
    b = Budget(seconds=10, max_evaluations=20_000)
    x = ga.solve(p, seed=7, budget=b)
    y = ga.solve(p, seed=7, budget=b)
    assert x.genes == y.genes and x.stats["logbook"] == y.stats["logbook"]


def test_time_budget_is_respected_within_ten_percent() -> None:
    """Counted in clock reads (each one 1 ms of fake time); wall-clock figures: benchmarks."""
    p = random_instance(1000, 32, seed=5)
    clock = Ticking(0.001)
    a = ga.solve(p, seed=1, budget=Budget(seconds=1.0, clock=clock))
    assert clock.elapsed <= 1.1
    assert a.feasible and a.stats["stopped_by"] == "deadline"


def test_no_creator_classes_and_random_restored() -> None:
    before = set(vars(creator))
    random.seed(5)
    expected = random.random()
    random.seed(5)
    ga.solve(random_instance(50, 3, seed=3), seed=2, budget=Budget(max_evaluations=3_000))
    assert random.random() == expected
    assert set(vars(creator)) == before


def test_descend_never_worsens() -> None:
    p = random_instance(80, 4, seed=9)
    genes = p.initial_assignments()["cheapest-repaired"]
    out = ga.descend(p, list(genes), random.Random(0), 2_000)
    assert valid_genes(p, out)
    assert p.evaluate(out) <= p.evaluate(genes) + 1e-9
