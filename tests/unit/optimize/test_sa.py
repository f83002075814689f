"""SA on simanneal: feasibility, determinism, budget, no global side effects."""

from __future__ import annotations

import math
import random
import signal
import threading

import pytest

from slurmopt.optimize import sa
from slurmopt.optimize.search import Budget, valid_genes
from slurmopt.optimize.static import random_instance
from tests.unit.optimize.ticking import Ticking


def test_result_is_feasible_and_not_worse_than_its_start() -> None:
    p = random_instance(150, 6, seed=1)
    a = sa.solve(p, seed=3, budget=Budget(seconds=10, max_evaluations=20_000))
    assert a.solver == "sa" and a.feasible and valid_genes(p, a.genes)
    assert p.feasible(list(a.genes))
    assert a.objective == pytest.approx(p.evaluate(list(a.genes)))
    assert a.objective <= a.stats["start_objective"] + 1e-9
    assert a.stats["steps"] == a.stats["step_budget"] == 20_000
    assert a.stats["stopped_by"] == "steps"


def test_it_improves_a_poor_start() -> None:
    p = random_instance(150, 6, seed=2)
    start = p.initial_assignments()["cheapest-repaired"]
    a = sa.solve(p, seed=0, budget=Budget(seconds=10, max_evaluations=30_000), initial=start)
    assert a.stats["start"] == "initial"
    assert a.objective < p.evaluate(start)


def test_same_seed_same_plan_other_seed_other_path() -> None:
    p = random_instance(120, 5, seed=4)
    b = Budget(seconds=10, max_evaluations=8_000)
    x = sa.solve(p, seed=7, budget=b)
    y = sa.solve(p, seed=7, budget=b)
    assert x.genes == y.genes and x.objective == y.objective
    assert x.stats["rejected"] == y.stats["rejected"]
    z = sa.solve(p, seed=8, budget=b)
    assert z.stats["rejected"] != x.stats["rejected"] or z.genes != x.genes


def test_time_budget_is_respected_within_ten_percent() -> None:
    """Counted in clock reads (each one 1 ms of fake time); wall-clock figures: benchmarks."""
    p = random_instance(1000, 32, seed=5)
    clock = Ticking(0.001)
    a = sa.solve(p, seed=1, budget=Budget(seconds=1.0, clock=clock))
    assert clock.elapsed <= 1.1
    assert a.feasible and a.stats["stopped_by"] == "deadline"


def test_injected_clock_stops_the_run() -> None:
    p = random_instance(100, 4, seed=6)
    ticks = iter(range(10**9))

    def clock() -> float:  # every call advances 0.1 s
        return next(ticks) * 0.1

    a = sa.solve(p, seed=1, budget=Budget(seconds=0.5, max_evaluations=10**7, clock=clock))
    assert a.stats["stopped_by"] == "deadline"
    assert a.stats["steps"] < 10**7
    assert a.feasible


def test_global_random_and_sigint_are_left_alone() -> None:
    p = random_instance(60, 3, seed=7)
    random.seed(123)
    expected = random.random()
    random.seed(123)
    handler = signal.getsignal(signal.SIGINT)
    sa.solve(p, seed=1, budget=Budget(seconds=5, max_evaluations=2_000))
    assert random.random() == expected
    assert signal.getsignal(signal.SIGINT) is handler


def test_runs_outside_the_main_thread() -> None:
    p = random_instance(60, 3, seed=8)
    out: list[object] = []
    t = threading.Thread(
        target=lambda: out.append(sa.solve(p, seed=1, budget=Budget(max_evaluations=1_000)))
    )
    t.start()
    t.join(30)
    assert out and getattr(out[0], "feasible", False)


def test_annealer_bookkeeping_follows_simanneal_rejections() -> None:
    # simanneal restores rejected states by copying; the evaluator and the
    # per-partition member lists must follow it exactly.
    p = random_instance(150, 6, seed=1)
    genes = p.initial_assignments()["regret"]
    ann = sa._Annealer(p, genes, rng=random.Random(0), deadline=math.inf, clock=lambda: 0.0)
    ann.Tmax, ann.Tmin, ann.steps = 1.0, 1e-3, 20_000
    saved = random.getstate()
    random.seed(0)
    try:
        ann.anneal()
    finally:
        random.setstate(saved)
    assert ann.rejected > 0
    current = ann.ev.assignment
    assert current == ann._last
    assert all(ann.members[current[j]][ann.pos[j]] == j for j in range(p.n_jobs))
    assert sum(len(m) for m in ann.members) == p.n_jobs
    assert ann.ev.value == pytest.approx(p.soft_incremental(current).value, abs=1e-6)
