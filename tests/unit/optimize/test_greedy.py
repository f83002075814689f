"""Greedy baselines, the policy registry and make_plan."""

from __future__ import annotations

import pytest

from slurmopt.optimize import (
    GREEDY_POLICIES,
    POLICIES,
    Budget,
    PolicyUnavailable,
    get_solver,
    greedy,
    make_plan,
    solve,
)
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from tests.unit.optimize.test_problem_builders import NOW, hetero_cluster, pending, running
from tests.unit.optimize.test_problem_schedule import _random_problem


def _names(prob: Problem, genes: list[int]) -> list[str]:
    return [prob.partitions[p].name for p in genes]


def _busy_a100() -> Problem:
    jobs = [
        running(100, "a100", ["a1"], gpus=4, limit=3600, started=NOW - 600),
        running(101, "a100", ["a2"], gpus=4, limit=3600, started=NOW - 600),
        running(102, "v100", ["v1"], gpus=4, gpu_type="v100", limit=3600, started=NOW - 3000),
        running(103, "v100", ["v2"], gpus=4, gpu_type="v100", limit=3600, started=NOW - 3000),
        # limit written for the slowest listed partition (v100, speed 1)
        pending(1, ["a100", "v100"], gpus=4, limit=36000, priority=10),
    ]
    return Problem.build(hetero_cluster(jobs), OptimizeConfig(move_penalty_s=0))


def test_earliest_start_is_slurms_rule_and_completion_uses_speed() -> None:
    prob = _busy_a100()
    # v100 frees at +600 s, a100 at +3000 s; runtime v100 36000 s, a100 18000 s
    assert _names(prob, greedy.earliest_start(prob)) == ["v100"]
    assert _names(prob, greedy.earliest_completion(prob)) == ["a100"]
    es = greedy.solve_earliest_start(prob, seed=0, budget=Budget(1))
    ec = greedy.solve_earliest_completion(prob, seed=0, budget=Budget(1))
    assert es.objective == pytest.approx(600 + 36000 + 600)
    assert ec.objective == pytest.approx(3000 + 18000 + 600)
    assert ec.objective < es.objective


def test_earliest_start_breaks_ties_toward_the_current_partition() -> None:
    jobs = [pending(1, ["h100", "a100"], limit=3600)]
    prob = Problem.build(hetero_cluster(jobs), allowed={1: ["h100", "a100", "v100"]})
    assert _names(prob, greedy.earliest_start(prob)) == ["h100"]


def test_round_robin_cycles_over_partitions() -> None:
    jobs = [pending(i, ["h100", "a100", "v100"], priority=100 - i) for i in range(1, 7)]
    prob = Problem.build(hetero_cluster(jobs))
    order = [p.name for p in prob.partitions]
    names = _names(prob, greedy.round_robin(prob))
    gpu_parts = [n for n in order if n != "cpu"]
    assert names == gpu_parts * 2


def test_hash_is_stateless_and_deterministic() -> None:
    prob = _random_problem(7)
    a = greedy.hash_route(prob)
    assert a == greedy.hash_route(prob)
    assert all(g in ch for g, ch in zip(a, prob.choices, strict=True))


def test_least_loaded_prefers_the_partition_with_less_work_per_gpu() -> None:
    jobs = [
        running(100, "a100", ["a1"], gpus=4, limit=36000, started=NOW),
        running(101, "a100", ["a2"], gpus=4, limit=36000, started=NOW),
        pending(1, ["a100", "h100"], gpus=1, limit=3600, priority=3),
    ]
    prob = Problem.build(hetero_cluster(jobs))
    assert _names(prob, greedy.least_loaded(prob)) == ["h100"]


@pytest.mark.parametrize("name", list(greedy.GENES))
def test_every_greedy_gives_a_valid_assignment(name: str) -> None:
    prob = _random_problem(8)
    a = solve(prob, name, seed=5, budget=Budget(seconds=1))
    assert a.solver == name and a.seed == 5 and a.feasible
    assert len(a.genes) == prob.n_jobs
    assert all(g in ch for g, ch in zip(a.genes, prob.choices, strict=True))
    assert a.objective == pytest.approx(prob.evaluate(list(a.genes)))


def test_best_greedy_is_the_minimum() -> None:
    prob = _random_problem(9)
    best = greedy.solve_best_greedy(prob, seed=0, budget=Budget(1))
    values = [greedy._solve(n, prob, 0).objective for n in greedy.GENES]
    assert best.objective == pytest.approx(min(values))
    assert best.stats["winner"] in greedy.GENES


def test_initial_assignments_are_the_greedy_plans() -> None:
    prob = _random_problem(10)
    seeds = prob.initial_assignments()
    assert set(seeds) == set(greedy.GENES)
    assert seeds["earliest-start"] == greedy.earliest_start(prob)


def test_registry() -> None:
    assert set(GREEDY_POLICIES) <= set(POLICIES)
    for name in GREEDY_POLICIES:
        assert callable(get_solver(name))
    with pytest.raises(PolicyUnavailable, match="unknown policy 'nope'"):
        get_solver("nope")


def test_missing_solver_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POLICIES, "ghost", "slurmopt.optimize.no_such_module:solve")
    with pytest.raises(PolicyUnavailable, match="policy 'ghost' is not available"):
        get_solver("ghost")
    monkeypatch.setitem(POLICIES, "ghost2", "slurmopt.optimize.greedy:no_such_function")
    with pytest.raises(PolicyUnavailable, match="not found"):
        get_solver("ghost2")


def test_make_plan() -> None:
    prob = _random_problem(11)
    plan = make_plan(prob, "earliest-completion", seed=2, budget=Budget(seconds=1))
    assert plan.solver == "earliest-completion" and plan.seed == 2
    assert plan.wall_s > 0
    assert plan.stats["policy"] == "earliest-completion"
    assert plan.stats["variable"] == prob.n_jobs
    assert len(plan.placements) == len(prob.jobs)
    assert plan.objective == pytest.approx(prob.evaluate(greedy.earliest_completion(prob)))


def test_greedy_path_imports_nothing_heavy() -> None:
    """optsub's submit path: building a problem and a greedy plan loads no numpy/scipy/deap."""
    import subprocess
    import sys
    from pathlib import Path

    hetero = Path(__file__).parents[2] / "data" / "optimize" / "snapshot_hetero.json"
    code = (
        "import sys, json\n"
        "from slurmopt.model import Snapshot\n"
        "from slurmopt.optimize import make_plan\n"
        "from slurmopt.optimize.problem import Problem\n"
        f"snap = Snapshot.from_dict(json.load(open({str(hetero)!r})))\n"
        "plan = make_plan(Problem.build(snap), 'earliest-completion')\n"
        "heavy = {'numpy', 'scipy', 'deap', 'simanneal', 'sqlalchemy'} & set(sys.modules)\n"
        "print(sorted(heavy), len(plan.placements))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[3],
        check=True,
    ).stdout
    assert out.strip() == "[] 7"


def test_available_policies_lists_the_importable_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from slurmopt.optimize import available_policies

    monkeypatch.setitem(POLICIES, "ghost", "slurmopt.optimize.no_such_module:solve")
    names = available_policies()
    assert "ghost" not in names
    assert set(GREEDY_POLICIES) <= set(names)
