"""Property tests (hypothesis) of the time-aware problem on random snapshots.

* capacity is never exceeded at any time on any node (checked independently
  of the profile code: by summing the placed jobs' demands at every start);
* every job lands in a partition its user allowed, that is up, on available
  nodes of that partition that can hold it;
* no placement breaks a time limit (runtime there <= limit <= MaxTime);
* the incremental evaluator agrees with full evaluation;
* same seed, same input -> same plan; the budget holds (within 10 %).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmopt.model import Snapshot
from slurmopt.optimize import GREEDY_POLICIES, Budget, make_plan
from slurmopt.optimize import schedule as sched
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from tests.unit.optimize.test_problem_builders import NOW, node, part, pending, running, snapshot
from tests.unit.optimize.ticking import Ticking

GPU_TYPES = ("a100", "h100", "v100")
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    n_nodes = draw(st.integers(2, 7))
    nodes = []
    for i in range(n_nodes):
        gtype = draw(st.sampled_from((*GPU_TYPES, None)))
        ngpu = draw(st.sampled_from((2, 4, 8))) if gtype else 0
        nodes.append(
            node(
                f"n{i}",
                cpus=draw(st.sampled_from((16, 32, 64))),
                mem=draw(st.sampled_from((64_000, 128_000))),
                gpus={gtype: ngpu} if gtype else {},
                flags=["DRAIN"] if draw(st.integers(0, 9)) == 0 else [],
            )
        )
    names = [n.name for n in nodes]
    n_parts = draw(st.integers(1, 4))
    parts = []
    for p in range(n_parts):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=n_nodes, unique=True))
        parts.append(
            part(
                f"p{p}",
                members,
                max_time_s=draw(st.sampled_from((None, 7200, 86400))),
                state="DOWN" if draw(st.integers(0, 11)) == 0 else "UP",
            )
        )
    jobs = []
    used = {n.name: [0, 0] for n in nodes}
    for r in range(draw(st.integers(0, 5))):
        p = draw(st.sampled_from(parts))
        where = draw(st.sampled_from(p.nodes))
        nd = next(n for n in nodes if n.name == where)
        gtype = next(iter(nd.gpus), "a100")
        g = min(nd.gpu_total - used[where][1], draw(st.integers(0, 4)))
        c = min(nd.cpus - used[where][0], draw(st.sampled_from((2, 8))))
        if c <= 0 or g < 0:
            continue
        used[where][0] += c
        used[where][1] += g
        limit = draw(st.sampled_from((1800, 7200)))
        jobs.append(
            running(
                1000 + r,
                p.name,
                [where],
                gpus=g,
                gpu_type=gtype,
                cpus=c,
                mem=1000,
                limit=limit,
                started=NOW - draw(st.integers(0, limit - 1)),
            )
        )
    pnames = [p.name for p in parts]
    for j in range(1, draw(st.integers(1, 10)) + 1):
        listed = draw(st.lists(st.sampled_from(pnames), min_size=1, max_size=3, unique=True))
        jobs.append(
            pending(
                j,
                listed,
                gpus=draw(st.sampled_from((0, 1, 2, 4))),
                gpu_type=draw(st.sampled_from((None, None, *GPU_TYPES))),
                cpus=draw(st.sampled_from((1, 4, 16))),
                mem=draw(st.sampled_from((1000, 32_000))),
                nodes=draw(st.sampled_from((1, 1, 2))),
                limit=draw(st.sampled_from((None, 600, 3600, 10_000))),
                priority=draw(st.integers(1, 50)),
            )
        )
    return snapshot(nodes, parts, jobs)


def _problem(snap: Snapshot, rewrite: bool, objective: str = "completion") -> Problem:
    cfg = OptimizeConfig(
        typed_gpu_rewritable=rewrite,
        window=4,
        move_penalty_s=60,
        objective=objective,  # type: ignore[arg-type]
        weight_by="gpus" if objective == "wait" else "uniform",
    )
    allowed = {j.job_id: [p.name for p in snap.partitions] for j in snap.pending if j.job_id % 2}
    return Problem.build(snap, cfg, allowed=allowed)


def _check_capacity(prob: Problem, r: sched.Run) -> None:
    base = prob.base
    per_node: dict[int, list[tuple[float, float, tuple[int, int, int]]]] = {}
    for o, (s, picks) in enumerate(zip(r.starts, r.picks, strict=True)):
        assert math.isfinite(s), "every eligible job gets a start"
        opt = prob.options[o][r.parts[o]]
        assert len(picks) == opt.n_nodes == len(set(picks))
        for n in picks:
            per_node.setdefault(n, []).append(
                (s, s + opt.runtime, base.demand(n, opt.cpu, opt.mem, opt.gpu))
            )
    for n, spans in per_node.items():
        for t, _, _ in spans:
            i = bisect_right(base.times[n], t) - 1
            free = (base.cpu[n][i], base.mem[n][i], base.gpu[n][i])
            load = [0, 0, 0]
            for s, e, d in spans:
                if s <= t < e:
                    for k in range(3):
                        load[k] += d[k]
            assert all(load[k] <= free[k] for k in range(3)), (n, t, load, free)


def _check_placements(prob: Problem, r: sched.Run) -> None:
    snap = prob.snapshot
    for o, job in enumerate(prob.jobs):
        p = prob.partitions[r.parts[o]]
        opt = prob.options[o][r.parts[o]]
        assert p.name in prob.allowed_sets[job.job_id]
        assert p.up
        k, limit = job.request.nodes_min, job.request.time_limit_s
        assert p.max_nodes is None or k <= p.max_nodes
        for n in r.picks[o]:
            nd = snap.nodes[n]
            assert nd.available and nd.name in p.nodes
            if job.request.wants_gpus and job.request.gpu_type and opt.rewrite is None:
                assert nd.gpus.get(job.request.gpu_type, 0) >= max(1, opt.gpu)
        if opt.rewrite is not None:
            assert prob.config.typed_gpu_rewritable
        eff = limit if limit is not None else (p.default_time_s or p.max_time_s)
        if eff is not None:
            assert opt.runtime <= eff * (1 + 1e-9), "a placement must never break the limit"
        if limit is not None and p.max_time_s is not None:
            assert limit <= p.max_time_s


@PROPS
@given(snap=snapshots(), rewrite=st.booleans(), data=st.data())
def test_every_plan_respects_capacity_eligibility_and_limits(
    snap: Snapshot, rewrite: bool, data: st.DataObject
) -> None:
    prob = _problem(snap, rewrite)
    candidates: list[Sequence[int]] = list(prob.initial_assignments().values())
    candidates.append([data.draw(st.sampled_from(list(ch))) for ch in prob.choices])
    for genes in candidates:
        r = sched.run(prob, prob.parts_of(list(genes)))
        _check_capacity(prob, r)
        _check_placements(prob, r)
        plan = prob.plan_from(genes)
        assert len(plan.placements) == len(prob.jobs)
        assert set(plan.unplaced).isdisjoint(p.job_id for p in plan.placements)
    # every pending job is either scheduled, unplaced with a reason, or beyond the window
    scheduled = {j.job_id for j in prob.jobs}
    for job in snap.pending:
        if job.job_id in prob.unplaced:
            assert prob.unplaced[job.job_id]
        else:
            assert job.job_id in scheduled or prob.build_stats["beyond_window"] > 0


@PROPS
@given(
    snap=snapshots(),
    objective=st.sampled_from(("completion", "wait", "makespan")),
    data=st.data(),
)
def test_incremental_agrees_with_full_evaluation(
    snap: Snapshot, objective: str, data: st.DataObject
) -> None:
    prob = _problem(snap, rewrite=True, objective=objective)
    if prob.n_jobs == 0:
        return
    inc = prob.incremental(prob.current_genes())
    for _ in range(8):
        j = data.draw(st.integers(0, prob.n_jobs - 1))
        p = data.draw(st.sampled_from(list(prob.choices[j])))
        before = inc.value
        d = inc.delta(j, p)
        trial = inc.assignment
        trial[j] = p
        full = prob.evaluate(trial)
        assert before + d == pytest.approx(full, rel=1e-9, abs=1e-6)
        if data.draw(st.booleans()):
            inc.apply(j, p)
            assert inc.value == pytest.approx(full, rel=1e-9, abs=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snap=snapshots(), seed=st.integers(0, 1000))
def test_same_seed_same_plan(snap: Snapshot, seed: int) -> None:
    for policy in (*GREEDY_POLICIES, "sa"):
        budget = Budget(seconds=5.0, max_evaluations=200)
        a = make_plan(_problem(snap, True), policy, seed=seed, budget=budget)
        b = make_plan(_problem(snap, True), policy, seed=seed, budget=budget)
        assert a.placements == b.placements, policy
        assert a.objective == b.objective


def _medium_problem() -> Problem:
    import json
    from pathlib import Path

    data = json.loads(
        (Path(__file__).parents[2] / "data" / "optimize" / "snapshot_synth48.json").read_text()
    )
    return Problem.build(Snapshot.from_dict(data))


@pytest.mark.parametrize("policy", ["earliest-completion", "sa", "auto"])
def test_budget_holds_within_ten_percent_and_no_plan_is_worse_than_current(policy: str) -> None:
    """Budget counted in clock reads (1 ms of fake time each); wall-clock figures: benchmarks."""
    prob = _medium_problem()
    clock = Ticking(0.001)
    plan = make_plan(prob, policy, seed=1, budget=Budget(seconds=1.0, clock=clock))
    assert clock.elapsed <= 1.1, f"{policy} read the clock {clock.reads} times in a 1 s budget"
    assert plan.objective <= make_plan(prob, "current").objective + 1e-6
