"""The exact reference (``--policy milp`` on a time-aware problem) against exhaustive search.

Small random snapshots with overlapping partitions, multi-node jobs, typed
GPUs, held jobs, reserved (unavailable) nodes and running jobs: the exact
solver's value equals the minimum of :meth:`Problem.evaluate` over every
assignment, and is never above any greedy rule. Plus the regression case of
issue 16 (a live testbed snapshot on which the static MILP was infeasible).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmopt.cli.main import cli
from slurmopt.model import Snapshot
from slurmopt.optimize import GREEDY_POLICIES, Budget, exact, solve
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from tests.unit.optimize.test_problem_builders import node, part, pending, running, snapshot
from tests.unit.optimize.ticking import Ticking

CASE = Path(__file__).resolve().parents[2] / "data" / "optimize" / "milp-infeasible-snapshot.json"
SPEED = {"h100": 3.0, "a100": 2.0, "v100": 1.0}
MAX_LEAVES = 1500
"""Exhaustive search bound (assignments) per example: keeps each example in milliseconds."""


@st.composite
def small_snapshots(draw: st.DrawFn) -> Snapshot:
    n_nodes = draw(st.integers(2, 5))
    nodes = []
    for i in range(n_nodes):
        gtype = draw(st.sampled_from(("a100", "h100", "v100")))
        nodes.append(
            node(
                f"n{i}",
                cpus=draw(st.sampled_from((8, 32))),
                mem=128_000,
                gpus={gtype: draw(st.sampled_from((2, 4)))},
                flags=["RESERVED"] if draw(st.integers(0, 7)) == 0 else [],
            )
        )
    names = [n.name for n in nodes]
    parts = [
        part(f"p{p}", draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
        for p in range(draw(st.integers(2, 4)))
    ]
    jobs = []
    for r in range(draw(st.integers(0, 3))):
        p = draw(st.sampled_from(parts))
        where = draw(st.sampled_from(p.nodes))
        nd = next(n for n in nodes if n.name == where)
        gtype = next(iter(nd.gpus))
        if any(where in j.nodes for j in jobs):
            continue
        jobs.append(
            running(
                900 + r,
                p.name,
                [where],
                gpus=draw(st.integers(1, nd.gpu_total)),
                gpu_type=gtype,
                cpus=2,
                mem=1000,
                limit=3600,
                started=1_700_000_000 - draw(st.integers(0, 3500)),
            )
        )
    pnames = [p.name for p in parts]
    for j in range(1, draw(st.integers(1, 8)) + 1):
        job = pending(
            j,
            draw(st.lists(st.sampled_from(pnames), min_size=1, max_size=3, unique=True)),
            gpus=draw(st.sampled_from((1, 2, 4))),
            gpu_type=draw(st.sampled_from((None, None, "a100", "h100"))),
            cpus=draw(st.sampled_from((1, 8))),
            mem=1000,
            nodes=draw(st.sampled_from((1, 1, 2))),
            limit=draw(st.sampled_from((600, 3600, 7200))),
            priority=draw(st.integers(1, 5)),
        )
        if draw(st.integers(0, 5)) == 0:
            job = dataclasses.replace(job, held=True)
        jobs.append(job)
    return snapshot(nodes, parts, jobs)


def _exhaustive(prob: Problem) -> float:
    return min(prob.evaluate(list(g)) for g in itertools.product(*prob.choices))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    small_snapshots(),
    st.sampled_from(("completion", "wait", "makespan")),
    st.booleans(),
)
def test_exact_equals_exhaustive_search(snap: Snapshot, objective: str, everywhere: bool) -> None:
    cfg = OptimizeConfig(gpu_speed=SPEED, objective=objective, move_penalty_s=30)  # type: ignore[arg-type]
    allowed = (
        {j.job_id: [p.name for p in snap.partitions] for j in snap.pending} if everywhere else None
    )
    prob = Problem.build(snap, cfg, allowed=allowed)
    leaves = 1
    for ch in prob.choices:
        leaves *= len(ch)
    if prob.n_jobs == 0 or leaves > MAX_LEAVES:
        return
    a = solve(prob, "milp", budget=Budget(seconds=30))
    assert a.stats["status"] == "optimal"
    assert a.feasible
    assert a.objective == pytest.approx(_exhaustive(prob), rel=1e-9, abs=1e-6)
    assert a.objective == pytest.approx(prob.evaluate(list(a.genes)))
    for name in GREEDY_POLICIES:
        assert a.objective <= solve(prob, name).objective + 1e-6


def test_node_limit_keeps_the_best_greedy_plan_and_says_so() -> None:
    from slurmopt.slurm.load import load_snapshot

    prob = Problem.build(load_snapshot(str(CASE)))
    res = exact.branch_and_bound(prob, node_limit=1)
    assert res.status == "node_limit"
    assert res.objective <= res.start_value + 1e-9
    assert res.bound <= res.objective


def test_issue16_snapshot_has_an_exact_answer_no_worse_than_any_heuristic() -> None:
    """Regression: the static MILP was infeasible here; every heuristic found a plan."""
    from slurmopt.slurm.load import load_snapshot

    prob = Problem.build(load_snapshot(str(CASE)))
    a = solve(prob, "milp", budget=Budget(seconds=30))
    assert a.stats["status"] == "optimal" and a.feasible
    others = [*GREEDY_POLICIES, "best-greedy", "sa", "ga"]
    for name in others:
        assert a.objective <= solve(prob, name, budget=Budget(seconds=1)).objective + 1e-6
    assert a.objective == pytest.approx(1426.0)


def test_plan_cli_answers_with_milp_and_milp_static_fails_in_one_line() -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["plan", "--snapshot", str(CASE), "--policy", "milp", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["stats"]["status"] == "optimal"
    bad = runner.invoke(cli, ["plan", "--snapshot", str(CASE), "--policy", "milp-static"])
    assert bad.exit_code == 8
    assert "static form has no plan" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout


def test_past_the_limits_milp_says_so_and_is_no_worse_than_the_greedy_rules() -> None:
    from slurmopt.slurm.load import load_snapshot

    big = CASE.parent / "snapshot_synth48.json"
    prob = Problem.build(load_snapshot(str(big)))
    clock = Ticking(0.001)  # 1 ms of fake time per clock read: the node limit stops it, not load
    a = solve(prob, "milp", budget=Budget(seconds=2, max_evaluations=500, clock=clock))
    assert a.stats["status"] == "node_limit"
    assert a.stats["gap"] is not None and a.stats["gap"] > 0
    assert a.stats["bound"] <= a.objective
    assert a.objective <= solve(prob, "best-greedy").objective + 1e-6
