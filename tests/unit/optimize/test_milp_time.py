"""The time-indexed MILP over the time-aware Problem (small instances)."""

from __future__ import annotations

import pytest

from slurmopt.optimize import milp_time
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from slurmopt.optimize.search import Budget
from tests.unit.optimize.test_problem_builders import NOW, hetero_cluster, pending


def by_name(prob: Problem, genes: list[int]) -> list[str]:
    return [prob.partitions[g].name for g in genes]


def test_single_job_goes_to_the_faster_partition_exactly() -> None:
    jobs = [pending(1, ["a100", "h100"], limit=6000, submit=NOW - 1000)]
    prob = Problem.build(hetero_cluster(jobs), OptimizeConfig(move_penalty_s=0))
    out = milp_time.build_and_solve(prob, slots=12, time_limit=20)
    assert out["status"] == "optimal"
    assert by_name(prob, out["genes"]) == ["h100"]
    # start at slot 0 = now; completion = 4000 (h100 runtime) + 1000 since submit
    assert out["objective"] == pytest.approx(5000)
    assert out["bound"] == pytest.approx(5000, rel=1e-6)


def test_two_whole_partition_jobs_run_side_by_side() -> None:
    # Each job needs both nodes of a partition (2 x 4 GPUs): two on h100 would
    # run one after the other (4000 + 8000); h100 + a100 run together (4000 + 6000).
    jobs = [pending(i, ["a100", "h100"], gpus=4, nodes=2, limit=6000, submit=NOW) for i in (1, 2)]
    prob = Problem.build(hetero_cluster(jobs), OptimizeConfig(move_penalty_s=0))
    a = milp_time.solve(prob, seed=0, budget=Budget(seconds=20), slots=12)
    assert sorted(by_name(prob, list(a.genes))) == ["a100", "h100"]
    assert a.feasible
    assert a.objective == pytest.approx(prob.evaluate(list(a.genes)))
    assert a.objective == pytest.approx((4000 + 6000) / 2)
    both_h100 = [p for p in prob.choices[0] if prob.partitions[p].name == "h100"] * 2
    assert a.objective < prob.evaluate(both_h100)
    assert a.stats["status"] == "optimal"


def test_makespan_and_oversized_models_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [pending(1, ["a100", "h100"], limit=6000, submit=NOW)]
    snap = hetero_cluster(jobs)
    mk = Problem.build(snap, OptimizeConfig(objective="makespan"))
    with pytest.raises(ValueError, match="makespan"):
        milp_time.build_and_solve(mk)
    monkeypatch.setattr(milp_time, "MAX_VARIABLES", 10)
    with pytest.raises(ValueError, match="variables"):
        milp_time.build_and_solve(Problem.build(snap))
