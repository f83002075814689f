"""The one ranking rule (slurmopt.optimize.ranking): same answers as a full plan per partition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slurmopt.model import Job, JobRequest, JobState, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from slurmopt.optimize.ranking import Candidate, order_candidates, rank_new_job, schedule_ahead
from tests.unit.optimize.test_problem_builders import NOW
from tests.unit.optimize.test_properties import PROPS, snapshots

NEW = -1


def _new_job(gpus: int, limit: int) -> Job:
    return Job(
        job_id=NEW,
        name="new",
        user="u",
        state=JobState.PENDING,
        partitions=(),
        request=JobRequest(gpus_per_node=gpus, time_limit_s=limit),
        submit_time=NOW,
    )


@PROPS
@given(snap=snapshots(), gpus=st.sampled_from((0, 1, 2)), limit=st.sampled_from((600, 3600)))
def test_one_pass_ranking_equals_a_full_plan_per_partition(
    snap: Snapshot, gpus: int, limit: int
) -> None:
    """Scheduling the queue ahead once and placing the job on each partition gives the
    same start as list-scheduling the whole problem with the job on that partition."""
    allowed = [p.name for p in snap.partitions]
    problem = Problem.build(
        snap, OptimizeConfig(), jobs=[_new_job(gpus, limit)], now=NOW, allowed={NEW: allowed}
    )
    ranking = rank_new_job(problem, NEW, allowed)
    pos = next((o for o, j in enumerate(problem.jobs) if j.job_id == NEW), None)
    if pos is None:
        assert not ranking.ordered
        return
    gene = problem.var_pos.index(pos)
    names = [p.name for p in problem.partitions]
    by_name = {c.partition: c for c in ranking.candidates}
    for pi in problem.choices[gene]:
        genes = problem.current_genes()
        genes[gene] = pi
        pl = problem.plan_from(genes).placement(NEW)
        assert pl is not None
        c = by_name[names[pi]]
        if c.eligible:
            assert c.start == pl.predicted_start
            assert c.end == pl.predicted_end


def _c(name: str, start: float, runtime: float) -> Candidate:
    return Candidate(name, True, "", start, runtime, start + runtime)


def test_free_now_is_never_passed_over_for_a_slower_free_now_partition() -> None:
    cands = [_c("v100", NOW, 300.0), _c("h100", NOW, 100.0), _c("a100", NOW + 50, 100.0)]
    for policy in ("completion", "start"):
        best = order_candidates(
            cands, policy=policy, default="v100", order=["v100", "h100"], now=NOW
        )
        assert best[0].partition == "h100", policy


def test_ties_go_to_the_default_partition_then_the_users_order() -> None:
    cands = [_c("b", NOW, 100.0), _c("a", NOW, 100.0), _c("c", NOW, 100.0)]
    got = order_candidates(cands, policy="completion", default="c", order=["b", "a", "c"], now=NOW)
    assert [c.partition for c in got] == ["c", "b", "a"]
    got = order_candidates(cands, policy="completion", default=None, order=["b", "a", "c"], now=NOW)
    assert [c.partition for c in got] == ["b", "a", "c"]


def test_start_policy_prefers_earliest_start_then_completion() -> None:
    cands = [_c("fast", NOW + 100, 10.0), _c("slow", NOW, 500.0)]
    got = order_candidates(cands, policy="start", default=None, order=["fast", "slow"], now=NOW)
    assert got[0].partition == "slow"
    got = order_candidates(
        cands, policy="completion", default=None, order=["fast", "slow"], now=NOW
    )
    assert got[0].partition == "fast"


@PROPS
@given(snap=snapshots(), gpus=st.sampled_from((0, 1, 2)), limit=st.sampled_from((600, 3600)))
def test_queue_digest_gives_the_same_ranking_as_scheduling_the_queue(
    snap: Snapshot, gpus: int, limit: int
) -> None:
    """The controller's digest (queue scheduled once) and optsub's own pass agree."""
    import dataclasses
    import json

    from slurmopt.optimize.ranking import queue_digest, use_digest

    cfg = OptimizeConfig()
    allowed = [p.name for p in snap.partitions]
    job = _new_job(gpus, limit)
    full = Problem.build(snap, cfg, jobs=[job], now=NOW, allowed={NEW: allowed})
    want = rank_new_job(full, NEW, allowed).candidates
    digest = json.loads(json.dumps(queue_digest(snap, cfg, {})))
    slim = dataclasses.replace(snap, jobs=tuple(j for j in snap.jobs if not j.pending))
    light = Problem.build(slim, cfg, jobs=[job], now=NOW, allowed={NEW: allowed})
    assert use_digest(light, digest, slim)
    got = rank_new_job(light, NEW, allowed).candidates
    assert [(c.partition, c.eligible, c.start, c.end) for c in got] == [
        (c.partition, c.eligible, c.start, c.end) for c in want
    ]


@PROPS
@given(snap=snapshots(), gpus=st.sampled_from((0, 1, 2)), limit=st.sampled_from((600, 3600)))
def test_ranking_on_a_kept_schedule_and_memo_equals_a_fresh_build(
    snap: Snapshot, gpus: int, limit: int
) -> None:
    """What the simulator reuses between submissions (issue 16) changes no ranking:
    the queue scheduled once (``schedule_ahead``) and passed as ``ahead``; a
    second build sharing the first one's ``memo``; a one-job problem built on
    the kept profiles (``base``) with no queue of its own."""
    from dataclasses import replace

    allowed = [p.name for p in snap.partitions]
    cfg = OptimizeConfig()
    job = [_new_job(gpus, limit)]
    fresh = Problem.build(snap, cfg, jobs=job, now=NOW, allowed={NEW: allowed})
    want = rank_new_job(fresh, NEW, allowed).candidates
    memo: dict = {}  # type: ignore[type-arg]
    for _ in range(2):
        again = Problem.build(snap, cfg, jobs=job, now=NOW, allowed={NEW: allowed}, memo=memo)
        assert rank_new_job(again, NEW, allowed).candidates == want
    pos = next((o for o, j in enumerate(fresh.jobs) if j.job_id == NEW), None)
    if pos is None or pos != len(fresh.jobs) - 1:
        return
    prof, first = schedule_ahead(fresh, pos)
    assert rank_new_job(fresh, NEW, allowed, ahead=prof).candidates == want
    if pos > 0:
        assert first >= NOW
    empty = replace(snap, jobs=(), reservations=(), qos=())
    if snap.reservations or snap.qos:
        return
    light = Problem.build(empty, cfg, jobs=job, now=NOW, allowed={NEW: allowed}, base=prof)
    assert rank_new_job(light, NEW, allowed).candidates == want
