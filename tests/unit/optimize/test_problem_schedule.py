"""Profiles, list scheduling, window, objective, incremental evaluation, static form."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from slurmopt.model import NodeState
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from slurmopt.optimize.profile import INF, Profiles
from tests.unit.optimize.test_problem_builders import (
    NOW,
    hetero_cluster,
    node,
    part,
    pending,
    running,
    snapshot,
)


def starts(prob: Problem, genes: list[int] | None = None) -> dict[int, float]:
    plan = prob.plan_from(prob.current_genes() if genes is None else genes)
    return {p.job_id: p.predicted_start - prob.now for p in plan.placements}


# -- profiles -----------------------------------------------------------------


def test_profile_build_releases_and_free_now() -> None:
    prof = Profiles.build(
        100.0,
        caps=[(8, 100, 4)],
        used=[(6, 50, 3)],
        releases=[(0, 200.0, 2, 20, 1), (0, 300.0, 4, 30, 2)],
    )
    assert prof.times[0] == [100.0, 200.0, 300.0]
    assert prof.cpu[0] == [2, 4, 8]
    assert prof.mem[0] == [50, 70, 100]
    assert prof.gpu[0] == [1, 2, 4]


def test_profile_unexplained_use_is_released_after_the_last_release() -> None:
    prof = Profiles.build(0.0, caps=[(8, 100, 4)], used=[(8, 100, 4)], releases=[])
    assert prof.times[0] == [0.0, 1.0]
    assert prof.gpu[0] == [0, 4]


def test_earliest_on_node_and_reserve() -> None:
    prof = Profiles.build(0.0, caps=[(8, 100, 4)], used=[(0, 0, 2)], releases=[(0, 50.0, 0, 0, 2)])
    # 2 GPUs free now, 4 after t=50
    assert prof.earliest_on_node(0, 0.0, 10.0, 1, 1, 2) == 0.0
    assert prof.earliest_on_node(0, 0.0, 10.0, 1, 1, 3) == 50.0
    assert prof.earliest_on_node(0, 0.0, 10.0, 1, 1, 3, bound=40.0) == INF
    assert prof.earliest_on_node(0, 0.0, 10.0, 1, 1, 5) == INF
    prof.reserve(0, 20.0, 100.0, 2, 10, 2)
    assert prof.times[0] == [0.0, 20.0, 50.0, 120.0]
    assert prof.gpu[0] == [2, 0, 2, 4]
    assert prof.cpu[0] == [8, 6, 6, 8]
    # a 2-GPU job for 30 s fits before the reservation only if it ends by t=20
    assert prof.earliest_on_node(0, 0.0, 20.0, 1, 1, 2) == 0.0
    assert prof.earliest_on_node(0, 0.0, 30.0, 1, 1, 2) == 50.0
    assert prof.fits_at(0, 50.0, 70.0, 1, 1, 2)
    assert not prof.fits_at(0, 10.0, 20.0, 1, 1, 1)
    assert prof.min_free(0) == (6, 90, 0)


def test_find_start_multi_node_needs_all_nodes_at_once() -> None:
    prof = Profiles.build(
        0.0,
        caps=[(8, 100, 4)] * 3,
        used=[(0, 0, 4), (0, 0, 0), (0, 0, 4)],
        releases=[(0, 100.0, 0, 0, 4), (2, 300.0, 0, 0, 4)],
    )
    s, nodes = prof.find_start([0, 1, 2], 2, 0.0, 50.0, 1, 1, 4)
    assert (s, nodes) == (100.0, [0, 1])
    s, nodes = prof.find_start([0, 1, 2], 3, 0.0, 50.0, 1, 1, 4)
    assert (s, nodes) == (300.0, [0, 1, 2])
    assert prof.find_start([0, 1], 3, 0.0, 50.0, 1, 1, 4) == (INF, [])
    # whole-node demand (-1) resolves against each node's capacity
    s, nodes = prof.find_start([0, 1, 2], 1, 0.0, 50.0, -1, -1, -1)
    assert (s, nodes) == (0.0, [1])


# -- list scheduling ------------------------------------------------------------


def test_running_jobs_release_at_their_limit_or_prediction() -> None:
    jobs = [
        running(100, "a100", ["a1"], gpus=4, limit=7200, started=NOW - 3600),
        running(101, "a100", ["a2"], gpus=4, limit=7200, started=NOW - 600),
        pending(1, ["a100"], gpus=4),
    ]
    prob = Problem.build(hetero_cluster(jobs))
    assert starts(prob) == {1: 3600.0}
    prob2 = Problem.build(hetero_cluster(jobs), runtimes={101: 1200})
    assert starts(prob2) == {1: 600.0}
    # Outlived its prediction (ran 600 s of a predicted 300): not about to end, it is
    # expected to run as long again (1200 s in all), as history's re-prediction does.
    prob3 = Problem.build(hetero_cluster(jobs), runtimes={101: 300})
    assert starts(prob3) == {1: 600.0}
    # ... and never past its time limit; a prediction beyond the limit is capped too.
    prob4 = Problem.build(hetero_cluster(jobs), runtimes={100: 60, 101: 9000})
    assert starts(prob4) == {1: 3600.0}


def test_priority_order_and_backfill_do_not_delay_higher_priority() -> None:
    jobs = [
        pending(1, ["v100"], gpus=4, nodes=2, priority=100, limit=3600),
        pending(2, ["v100"], gpus=4, priority=50, limit=7200),
        pending(3, ["v100"], gpus=1, priority=200, limit=600),
    ]
    prob = Problem.build(hetero_cluster(jobs))
    assert [j.job_id for j in prob.jobs] == [3, 1, 2]
    st = starts(prob)
    assert st[3] == 0.0
    assert st[1] == 600.0  # both v100 nodes needed: waits for job 3
    assert st[2] == 4200.0  # after job 1, never before it (it would delay job 1)


def test_nodes_shared_by_partitions_are_counted_once() -> None:
    nodes = [node("n1", gpus={"a100": 4})]
    parts = [part("p1", ["n1"]), part("p2", ["n1"])]
    jobs = [pending(1, ["p1"], gpus=4, priority=2), pending(2, ["p2"], gpus=4, priority=1)]
    prob = Problem.build(snapshot(nodes, parts, jobs))
    assert starts(prob) == {1: 0.0, 2: 3600.0}
    assert prob.comp_of_part[0] == prob.comp_of_part[1]


def test_down_and_drained_nodes_have_no_capacity() -> None:
    nodes = [
        node("n1", gpus={"a100": 4}, flags=["DRAIN"]),
        node("n2", gpus={"a100": 4}, state=NodeState.DOWN),
        node("n3", gpus={"a100": 4}),
    ]
    jobs = [pending(i, ["p"], gpus=4, priority=10 - i) for i in range(1, 4)]
    prob = Problem.build(snapshot(nodes, [part("p", ["n1", "n2", "n3"])], jobs))
    assert sorted(starts(prob).values()) == [0.0, 3600.0, 7200.0]


def test_eligible_time_delays_the_start() -> None:
    job = replace(pending(1, ["a100"]), eligible_time=NOW + 500)
    prob = Problem.build(hetero_cluster([job]))
    assert starts(prob) == {1: 500.0}


def test_window_keeps_deep_jobs_fixed_and_drops_the_tail() -> None:
    jobs = [pending(i, ["a100", "h100"], priority=100 - i) for i in range(1, 7)]
    jobs.append(pending(50, ["v100"], priority=1))
    prob = Problem.build(hetero_cluster(jobs), OptimizeConfig(window=2))
    # a100/h100 windows hold jobs 1, 2; v100's window holds job 50, so jobs 3-6
    # are scheduled but fixed (they are ahead of job 50 in priority)
    variable = [prob.jobs[o].job_id for o in prob.var_pos]
    assert variable == [1, 2, 50]
    assert [prob.jobs[o].job_id for o, f in enumerate(prob.fixed) if f >= 0] == [3, 4, 5, 6]
    assert prob.build_stats["beyond_window"] == 0
    prob2 = Problem.build(hetero_cluster(jobs[:6]), OptimizeConfig(window=2))
    assert prob2.n_jobs == 2 and len(prob2.jobs) == 2
    assert prob2.build_stats["beyond_window"] == 4


def test_jobs_argument_limits_the_variables_and_adds_new_jobs() -> None:
    old = [pending(1, ["a100", "h100"], priority=10), pending(2, ["a100", "h100"], priority=5)]
    new = pending(99, ["a100", "h100"], priority=7)
    prob = Problem.build(hetero_cluster(old), jobs=[new])
    assert [prob.jobs[o].job_id for o in prob.var_pos] == [99]
    assert [j.job_id for j in prob.jobs] == [1, 99]  # job 2 is after the last variable


def test_held_jobs_are_ignored() -> None:
    held = replace(pending(1, ["a100"]), held=True)
    prob = Problem.build(hetero_cluster([held, pending(2, ["a100"])]))
    assert [j.job_id for j in prob.jobs] == [2]


# -- objective -------------------------------------------------------------------


def _two_choice() -> Problem:
    jobs = [pending(1, ["a100", "h100"], limit=6000, submit=NOW - 1000)]
    return Problem.build(hetero_cluster(jobs), OptimizeConfig(move_penalty_s=0))


def test_objectives() -> None:
    prob = _two_choice()
    h100 = next(p for p in prob.choices[0] if prob.partitions[p].name == "h100")
    a100 = next(p for p in prob.choices[0] if prob.partitions[p].name == "a100")
    # completion = start + runtime - submit; runtime a100 6000 (slowest listed), h100 4000
    assert prob.evaluate([a100]) == pytest.approx(7000)
    assert prob.evaluate([h100]) == pytest.approx(5000)
    wait = Problem.build(prob.snapshot, OptimizeConfig(objective="wait", move_penalty_s=0))
    assert wait.evaluate([h100]) == pytest.approx(1000)
    mk = Problem.build(prob.snapshot, OptimizeConfig(objective="makespan", move_penalty_s=0))
    assert mk.evaluate([a100]) == pytest.approx(6000)


def test_move_penalty_applies_outside_the_listed_partitions() -> None:
    snap = hetero_cluster([pending(1, ["a100"], limit=6000, submit=NOW)])
    cfg = OptimizeConfig(move_penalty_s=500)
    prob = Problem.build(snap, cfg, allowed={1: ["a100", "h100"]})
    by = {prob.partitions[p].name: p for p in prob.choices[0]}
    assert prob.evaluate([by["a100"]]) == pytest.approx(6000)
    assert prob.evaluate([by["h100"]]) == pytest.approx(4000 + 500)  # 6000 * 2/3 + penalty


def test_weights() -> None:
    jobs = [
        pending(1, ["a100"], gpus=4, limit=1000, submit=NOW, priority=2),
        pending(2, ["h100"], gpus=1, limit=3000, submit=NOW, priority=1),
    ]
    snap = hetero_cluster(jobs)
    uni = Problem.build(snap)
    assert uni.evaluate(uni.current_genes()) == pytest.approx((1000 + 3000) / 2)
    gw = Problem.build(snap, OptimizeConfig(weight_by="gpus"))
    assert gw.evaluate(gw.current_genes()) == pytest.approx((4 * 1000 + 3000) / 5)


# -- incremental ------------------------------------------------------------------


def _random_problem(seed: int) -> Problem:
    rng = random.Random(seed)
    names = ["h100", "a100", "v100"]
    jobs = [
        running(100, "a100", ["a1"], gpus=2, limit=5000, started=NOW - 1000),
        running(101, "h100", ["h2"], gpus=3, gpu_type="h100", limit=9000, started=NOW - 100),
    ]
    for i in range(1, 25):
        listed = rng.sample(names, rng.randint(1, 3))
        jobs.append(
            pending(
                i,
                listed,
                gpus=rng.choice((1, 2, 4)),
                nodes=rng.choice((1, 1, 1, 2)),
                limit=rng.choice((1800, 3600, 7200)),
                priority=rng.randint(1, 100),
            )
        )
    return Problem.build(hetero_cluster(jobs), OptimizeConfig(move_penalty_s=120))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_matches_full_evaluation(seed: int) -> None:
    prob = _random_problem(seed)
    rng = random.Random(seed)
    inc = prob.incremental(prob.current_genes())
    assert inc.value == pytest.approx(prob.evaluate(prob.current_genes()))
    for _ in range(60):
        j = rng.randrange(prob.n_jobs)
        p = rng.choice(prob.choices[j])
        d = inc.delta(j, p)
        trial = inc.assignment
        trial[j] = p
        assert inc.value + d == pytest.approx(prob.evaluate(trial))
        if rng.random() < 0.6:
            inc.apply(j, p)
            assert inc.part_of(j) == p
            assert inc.value == pytest.approx(prob.evaluate(inc.assignment))
    # apply without a preceding delta works too
    j = 0
    p = prob.choices[0][-1]
    inc.apply(j, p)
    assert inc.value == pytest.approx(prob.evaluate(inc.assignment))


def test_repair_and_feasible() -> None:
    prob = _random_problem(4)
    bad = [-1] * prob.n_jobs
    assert not prob.feasible(bad)
    fixed = prob.repair(bad)
    assert prob.feasible(fixed)
    assert fixed == prob.current_genes()
    assert prob.evaluate(bad) == prob.evaluate(fixed)


# -- plans, candidates, static form ---------------------------------------------------


def test_plan_from_rewrites_gpu_type_and_lists_unplaced() -> None:
    jobs = [
        pending(1, ["a100", "h100"], gpu_type="a100", limit=6000),
        pending(2, ["v100"], gpus=8),
    ]
    prob = Problem.build(hetero_cluster(jobs), OptimizeConfig(move_penalty_s=0), rewritable=[1])
    h100 = next(p for p in prob.choices[0] if prob.partitions[p].name == "h100")
    plan = prob.plan_from([h100], solver="x", seed=3)
    pl = plan.placement(1)
    assert pl is not None and pl.partition == "h100" and pl.gpu_type == "h100"
    assert pl.predicted_runtime == pytest.approx(4000)
    assert plan.solver == "x" and plan.seed == 3
    assert set(plan.unplaced) == {2}
    assert plan.objective == pytest.approx(prob.evaluate([h100]))


def test_candidate_table() -> None:
    jobs = [
        running(100, "a100", ["a1"], gpus=4, limit=3600, started=NOW - 1800),
        running(101, "a100", ["a2"], gpus=4, limit=3600, started=NOW - 1800),
        pending(1, ["a100", "h100", "cpu"], limit=3600),
    ]
    prob = Problem.build(hetero_cluster(jobs))
    rows = prob.candidates(prob.current_genes())
    assert len(rows) == 1
    cands = {c["partition"]: c for c in rows[0]["candidates"]}
    assert set(cands) == {"a100", "h100", "cpu"}
    assert cands["cpu"]["eligible"] is False and cands["cpu"]["reason"] == "partition has no GPUs"
    assert cands["a100"]["start"] - prob.now == pytest.approx(1800)
    assert cands["h100"]["start"] - prob.now == 0
    assert cands["h100"]["end"] == cands["h100"]["start"] + cands["h100"]["runtime"]


def test_static_form_costs_and_capacity() -> None:
    prob = _random_problem(5)
    st = prob.to_static()
    assert st.n_jobs == prob.n_jobs and st.n_parts == prob.n_parts
    assert st.choices == tuple(tuple(c) for c in prob.choices)
    for g, ch in enumerate(prob.choices):
        for p in range(prob.n_parts):
            assert math.isfinite(st.cost[g][p]) == (p in ch)
    assert "gpu:a100" in st.kinds and "nodes" in st.kinds
    assert (st.capacity >= 0).all()
    assert prob.static_form().cost.shape == st.cost.shape


def test_incremental_undo_restores_the_state_exactly() -> None:
    prob = _random_problem(6)
    rng = random.Random(6)
    inc = prob.incremental(prob.current_genes())
    movable = [j for j, ch in enumerate(prob.choices) if len(ch) > 1]
    for _ in range(30):
        j1, j2 = rng.sample(movable, 2)
        before, genes = inc.value, inc.assignment
        old1, old2 = inc.part_of(j1), inc.part_of(j2)
        inc.apply(j1, next(p for p in prob.choices[j1] if p != old1))
        inc.apply(j2, next(p for p in prob.choices[j2] if p != old2))
        assert inc.value == pytest.approx(prob.evaluate(inc.assignment))
        if rng.random() < 0.5:  # rejected: undo in reverse order (SA's pattern)
            inc.apply(j2, old2)
            inc.apply(j1, old1)
            assert inc.assignment == genes
            assert inc.value == before
        # whatever happened, later deltas are still exact
        j = rng.choice(movable)
        p = rng.choice(prob.choices[j])
        trial = inc.assignment
        trial[j] = p
        assert inc.value + inc.delta(j, p) == pytest.approx(prob.evaluate(trial))


def test_a_new_submission_is_placed_even_behind_a_deep_queue() -> None:
    queue = [pending(i, ["a100", "h100"], priority=100 + i) for i in range(1, 9)]
    new = replace(pending(-1, ["a100"], priority=0), submit_time=NOW)
    prob = Problem.build(
        hetero_cluster(queue), OptimizeConfig(window=2), jobs=[new], allowed={-1: ["a100", "h100"]}
    )
    assert [prob.jobs[o].job_id for o in prob.var_pos] == [-1]
    assert len(prob.jobs) == 9  # the whole queue ahead of it is scheduled (fixed)
    rows = prob.candidates(prob.current_genes())
    assert rows[-1]["job_id"] == -1 and len(rows[-1]["candidates"]) == 2


def test_incremental_is_exact_on_a_larger_cluster() -> None:
    """150 jobs, partitions sharing nodes, 2-node jobs: deltas equal full evaluations."""
    import json
    from pathlib import Path

    from slurmopt.model import Snapshot

    path = Path(__file__).parents[2] / "data" / "optimize" / "snapshot_synth48.json"
    prob = Problem.build(Snapshot.from_dict(json.loads(path.read_text())))
    assert len(prob.comp_nodes) < len(prob.partitions)  # some partitions share nodes
    rng = random.Random(48)
    inc = prob.incremental(prob.initial_assignments()["earliest-completion"])
    movable = [j for j, ch in enumerate(prob.choices) if len(ch) > 1]
    for _ in range(40):
        j = rng.choice(movable)
        p = rng.choice([q for q in prob.choices[j] if q != inc.part_of(j)])
        trial = inc.assignment
        trial[j] = p
        assert inc.value + inc.delta(j, p) == pytest.approx(prob.evaluate(trial), rel=1e-12)
        if rng.random() < 0.5:
            inc.apply(j, p)
    assert inc.value == pytest.approx(prob.evaluate(inc.assignment), rel=1e-12)


def test_partition_priority_tier_orders_the_queue_first() -> None:
    jobs = [pending(1, ["a100"], priority=900), pending(2, ["h100"], priority=10)]
    snap = hetero_cluster(jobs)
    parts = tuple(replace(p, priority_tier=5) if p.name == "h100" else p for p in snap.partitions)
    prob = Problem.build(replace(snap, partitions=parts))
    assert [j.job_id for j in prob.jobs] == [2, 1]


def _find_start_reference(
    prof: Profiles, nodes: list[int], k: int, t0: float, dur: float, cpu: int, mem: int, gpu: int
) -> tuple[float, list[int]]:
    """``find_start`` for k > 1 as it was before issue 16's speed-up (every node checked)."""
    from bisect import bisect_right

    if len(nodes) < k:
        return INF, []
    dem = [prof.demand(n, cpu, mem, gpu) for n in nodes]
    t = t0
    while t < INF:
        tk = sorted(prof.earliest_on_node(n, t, dur, *d) for n, d in zip(nodes, dem, strict=True))[
            k - 1
        ]
        if tk >= INF:
            return INF, []
        fit = [n for n, d in zip(nodes, dem, strict=True) if prof.fits_at(n, tk, dur, *d)]
        if len(fit) >= k:
            return tk, fit[:k]
        nxt = INF
        for n in nodes:
            ts = prof.times[n]
            j = bisect_right(ts, tk)
            if j < len(ts) and ts[j] < nxt:
                nxt = ts[j]
        t = nxt
    return INF, []


def test_multi_node_find_start_equals_the_reference() -> None:
    """The multi-node search (which skips the fit check of nodes whose earliest start
    already decides it) gives the start and nodes the full check gave, on random
    profiles filled by random reservations."""
    rng = random.Random(16)
    for _ in range(300):
        n_nodes = rng.randint(2, 7)
        caps = [(8, 100, 4)] * n_nodes
        prof = Profiles.build(0.0, caps, [(0, 0, 0)] * n_nodes, [])
        for _ in range(rng.randint(0, 12)):
            n = rng.randrange(n_nodes)
            s, d = float(rng.randint(0, 50)), float(rng.randint(1, 40))
            c, m, g = rng.randint(0, 8), rng.randint(0, 100), rng.randint(0, 4)
            if prof.fits_at(n, s, d, c, m, g):
                prof.reserve(n, s, d, c, m, g)
        k = rng.randint(2, n_nodes)
        nodes = rng.sample(range(n_nodes), rng.randint(k - 1, n_nodes))
        dur = float(rng.randint(1, 30))
        c, m, g = rng.choice([(1, 10, 1), (4, 50, 2), (8, 100, 4), (-1, -1, -1), (2, -1, 1)])
        t0 = float(rng.randint(0, 20))
        want = _find_start_reference(prof, nodes, k, t0, dur, c, m, g)
        assert prof.find_start(nodes, k, t0, dur, c, m, g) == want


def test_list_scheduling_with_search_bounds_places_as_without() -> None:
    """``place(..., lbs=)`` (per node, no free slot before a bound, kept while only
    reservations are added) gives every job of a list schedule the start and node
    it gets without the bounds."""
    from slurmopt.optimize.eligibility import Option
    from slurmopt.optimize.schedule import commit, place

    rng = random.Random(161)
    for _ in range(40):
        n_nodes = rng.randint(1, 6)
        caps = [(8, 100, 4)] * n_nodes
        plain = Profiles.build(0.0, caps, [(0, 0, 0)] * n_nodes, [])
        bounded = Profiles.build(0.0, caps, [(0, 0, 0)] * n_nodes, [])
        lbs: dict[tuple[int, int, int, float], dict[int, float]] = {}
        for _ in range(60):
            nodes = tuple(sorted(rng.sample(range(n_nodes), rng.randint(1, n_nodes))))
            c, m, g = rng.choice([(1, 10, 1), (4, 50, 2), (8, 100, 4), (2, 20, 0)])
            opt = Option(0, nodes, 1, c, m, g, None, None, 1.0, float(rng.randint(1, 50)), None)
            t0 = float(rng.choice([0, 0, 0, 5]))
            want = place(plain, opt, t0)
            got = place(bounded, opt, t0, lbs=lbs)
            assert got == want
            commit(plain, opt, *want)
            commit(bounded, opt, *got)
