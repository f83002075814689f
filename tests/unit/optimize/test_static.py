"""The static GAP form: objective, penalty, incremental evaluator, repair, generator."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmopt.optimize.search import valid_genes
from slurmopt.optimize.static import StaticProblem, random_instance


def tiny() -> StaticProblem:
    # 3 jobs, 2 partitions, one kind; job 2 may only go to partition 1.
    cost = [[1.0, 2.0], [1.0, 3.0], [math.inf, 1.0]]
    demand = [[2.0, 2.0, 1.0]]
    capacity = [[2.0, 3.0]]
    return StaticProblem(cost, demand, capacity)


def test_choices_follow_finite_costs() -> None:
    p = tiny()
    assert [list(c) for c in p.choices] == [[0, 1], [0, 1], [1]]
    assert p.n_jobs == 3 and p.n_parts == 2 and p.n_kinds == 1


def test_shape_errors() -> None:
    with pytest.raises(ValueError):
        StaticProblem([[1.0, 2.0]], [[1.0, 1.0]], [[1.0, 1.0]])  # demand (1, 2) != (K, J)
    with pytest.raises(ValueError):
        StaticProblem([[math.inf, math.inf]], [[1.0]], [[1.0, 1.0]])  # job with no partition
    with pytest.raises(ValueError):
        StaticProblem([[1.0]], [[-1.0]], [[1.0]])


def test_evaluate_cost_and_penalty() -> None:
    p = tiny()
    ok = [0, 1, 1]  # loads: p0 = 2, p1 = 3
    assert p.feasible(ok)
    assert p.evaluate(ok) == pytest.approx(1.0 + 3.0 + 1.0)
    bad = [0, 0, 1]  # p0 load 4 > 2
    assert not p.feasible(bad)
    assert p.penalty(bad) >= p.big
    assert p.evaluate(bad) > p.evaluate(ok)
    assert not p.feasible([1, 1, 0])  # job 2 not allowed in partition 0


def test_penalty_outweighs_any_single_cost_swing() -> None:
    p = random_instance(40, 4, seed=3)
    assert p.big > float(np.nanmax(np.where(np.isfinite(p.cost), p.cost, np.nan)))


def test_per_partition_demand() -> None:
    cost = [[1.0, 1.0]]
    demand = [[[5.0, 1.0]]]  # (K=1, J=1, P=2)
    p = StaticProblem(cost, demand, [[2.0, 2.0]])
    assert not p.feasible([0]) and p.feasible([1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_jobs=st.integers(5, 40), n_parts=st.integers(2, 6))
def test_incremental_matches_full_evaluation(seed: int, n_jobs: int, n_parts: int) -> None:
    p = random_instance(n_jobs, n_parts, seed=seed)
    rng = random.Random(seed)
    genes = [rng.choice(list(c)) for c in p.choices]
    ev = p.incremental(genes)
    assert ev.value == pytest.approx(p.evaluate(genes), rel=1e-9, abs=1e-6)
    for _ in range(60):
        j = rng.randrange(n_jobs)
        q = rng.choice(list(p.choices[j]))
        moved = list(ev.assignment)
        moved[j] = q
        assert ev.delta(j, q) == pytest.approx(
            p.evaluate(moved) - p.evaluate(ev.assignment), rel=1e-6, abs=1e-6
        )
        i = rng.randrange(n_jobs)
        sw = list(ev.assignment)
        sw[i], sw[j] = sw[j], sw[i]
        if valid_genes(p, sw):
            assert ev.swap_delta(i, j) == pytest.approx(
                p.evaluate(sw) - p.evaluate(ev.assignment), rel=1e-6, abs=1e-6
            )
        if rng.random() < 0.5:
            ev.apply(j, q)
            assert ev.assignment == moved
            assert ev.value == pytest.approx(p.evaluate(moved), rel=1e-9, abs=1e-6)
            assert ev.feasible == p.feasible(moved)


def test_soft_evaluator_tracks_cost_and_feasibility() -> None:
    p = random_instance(60, 5, seed=11)
    rng = random.Random(0)
    genes = [rng.choice(list(c)) for c in p.choices]
    ev = p.soft_incremental(genes)
    for _ in range(200):
        j = rng.randrange(p.n_jobs)
        ev.apply(j, rng.choice(list(p.choices[j])))
    a = ev.assignment
    assert ev.cost == pytest.approx(p.assignment_cost(a))
    assert ev.feasible == p.feasible(a)
    assert ev.value >= ev.cost - 1e-9


def test_repair_mostly_reaches_feasibility_and_never_adds_overflow() -> None:
    # Repair is best effort: from random (badly overflowing) starts on tight
    # instances it must succeed in most cases and never make things worse.
    ok = 0
    for seed in range(20):
        p = random_instance(120, 6, seed=seed)
        rng = random.Random(seed)
        genes = [rng.choice(list(c)) for c in p.choices]
        fixed = p.repair(list(genes))
        assert valid_genes(p, fixed)
        assert p.penalty(fixed) <= p.penalty(genes)
        ok += p.feasible(fixed)
    assert ok >= 17


def test_repair_fixes_disallowed_genes() -> None:
    p = tiny()
    fixed = p.repair([0, 1, 0])  # job 2 may not use partition 0
    assert fixed[2] == 1 and p.feasible(fixed)


def test_generator_is_deterministic_and_tight() -> None:
    a = random_instance(200, 8, seed=5)
    b = random_instance(200, 8, seed=5)
    assert np.array_equal(a.cost, b.cost) and np.array_equal(a.capacity, b.capacity)
    c = random_instance(200, 8, seed=6)
    assert not np.array_equal(a.cost, c.cost)
    # Tight: putting every job in its cheapest partition overflows.
    cheapest = [min(ch, key=lambda q, j=j: a.cost[j, q]) for j, ch in enumerate(a.choices)]
    assert not a.feasible(cheapest)
    # GPU counts 1/2/4/8 only: GPU-seconds / runtime.
    assert a.kinds == ("gpu_s", "cpu_s")


def test_initial_assignments_are_valid() -> None:
    p = random_instance(150, 6, seed=2)
    seeds = p.initial_assignments()
    assert set(seeds) >= {"cheapest-repaired", "regret"}
    for genes in seeds.values():
        assert valid_genes(p, genes)
