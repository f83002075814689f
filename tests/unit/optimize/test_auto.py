"""The ``auto`` policy: seeds (greedy + LP rounding), GA, SA; never worse than its best seed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from slurmopt.optimize import auto
from slurmopt.optimize.search import Budget, IncrementalEvaluator, valid_genes
from slurmopt.optimize.static import StaticProblem, random_instance
from tests.unit.optimize.ticking import Ticking


def test_never_worse_than_its_best_seed_and_uses_lp() -> None:
    p = random_instance(200, 8, seed=1)
    a = auto.solve(p, seed=0, budget=Budget(seconds=10, max_evaluations=30_000))
    assert a.solver == "auto" and a.feasible and valid_genes(p, a.genes)
    assert "lp-round" in a.stats["seeds"]
    assert a.objective <= a.stats["seed_objective"] + 1e-9
    for genes in p.initial_assignments().values():
        if p.feasible(genes):
            assert a.objective <= p.evaluate(genes) + 1e-9
    assert a.stats["winner"] in ("lns", "ga", "sa")
    assert a.stats["lns_objective"] <= a.stats["seed_objective"] + 1e-9


def test_deterministic_per_seed() -> None:
    p = random_instance(150, 6, seed=2)
    b = Budget(seconds=10, max_evaluations=10_000)
    assert auto.solve(p, seed=4, budget=b).genes == auto.solve(p, seed=4, budget=b).genes


def test_time_budget_is_respected_within_ten_percent() -> None:
    """Counted in clock reads (each one 1 ms of fake time); wall-clock figures: benchmarks."""
    p = random_instance(1000, 50, seed=3)
    clock = Ticking(0.001)
    a = auto.solve(p, seed=1, budget=Budget(seconds=2.0, clock=clock))
    assert clock.elapsed <= 2.2
    assert a.feasible


class Opaque:
    """A problem with neither a static form nor seeds: only the bare contract."""

    def __init__(self, inner: StaticProblem) -> None:
        self._p = inner

    @property
    def n_jobs(self) -> int:
        return self._p.n_jobs

    @property
    def n_parts(self) -> int:
        return self._p.n_parts

    @property
    def choices(self) -> Sequence[Sequence[int]]:
        return self._p.choices

    def evaluate(self, assign: Sequence[int]) -> float:
        return self._p.evaluate(assign)

    def feasible(self, assign: Sequence[int]) -> bool:
        return self._p.feasible(assign)

    def repair(self, assign: list[int]) -> list[int]:
        return self._p.repair(assign)

    def incremental(self, assign: Sequence[int]) -> IncrementalEvaluator:
        return self._p.incremental(assign)


def test_works_on_a_problem_without_static_form_or_seeds() -> None:
    p = Opaque(random_instance(80, 4, seed=5))
    a = auto.solve(p, seed=0, budget=Budget(max_evaluations=5_000))
    assert a.stats["lp_round"] == "no static form"
    assert a.stats["seeds"] == ["first-choice"]
    assert a.feasible
    assert a.objective == pytest.approx(p.evaluate(list(a.genes)))
