"""How the live system ran, modelled in the optimizer policies (scripts/sim-vs-real).

Controller predictions learned online, the state cache's lag, optsub's overlay
limit, the first controller tick, the optimizer's configured GPU speeds.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from slurmopt.clusterspec import parse_spec
from slurmopt.history.predict import JobInfo
from slurmopt.sim import optpolicy
from slurmopt.sim.cluster import SimCluster
from slurmopt.sim.engine import Simulator
from slurmopt.sim.optpolicy import ControllerPredictions, FinishedJob, OptimizerPolicy
from slurmopt.sim.run import simulate
from slurmopt.sim.traces import Trace, TraceJob
from slurmopt.sim.workload import SimJob, build_jobs

SPEC = {
    "name": "two",
    "nodes": [
        {"name": "s1", "cpus": 8, "memory_mb": 8000, "gpus": 4, "gpu_type": "slow"},
        {"name": "f1", "cpus": 8, "memory_mb": 8000, "gpus": 4, "gpu_type": "fast"},
    ],
    "partitions": [{"name": "slow", "nodes": ["s1"]}, {"name": "fast", "nodes": ["f1"]}],
    "gpu_speed": {"slow": 1.0, "fast": 2.0},
    "reference_gpu_type": "slow",
}


def _job(i: int, submit: int, runtime: int, gpus: float = 4.0, limit: int = 1000) -> TraceJob:
    return TraceJob(
        job_id=i,
        submit=submit,
        runtime=runtime,
        requested_time=limit,
        gpus=gpus,
        cpus=2.0,
        nodes=1,
        user="u",
        name="train",
    )


def _run(
    jobs: tuple[TraceJob, ...], interval: int = 60, first_tick: int | None = 0, **opts: Any
) -> tuple[Simulator, OptimizerPolicy]:
    cluster = SimCluster.from_spec(parse_spec(SPEC))
    sim_jobs, rejected = build_jobs(Trace("t", "csv", jobs), cluster, [])
    assert not rejected
    pol = OptimizerPolicy("auto", **opts)
    sim = Simulator(cluster, sim_jobs, pol, controller_interval=interval, first_tick=first_tick)
    return sim, pol


def test_learned_predictions_follow_finished_jobs() -> None:
    """Tick 0: no job has finished, job 0 is predicted at its limit (1,000 reference s,
    500 s on the fast GPUs it waits for). Tick 60: job 0 ran 50 s on fast (100
    reference s); job 1, same user, name and limit, running on fast, gets 100 / 2."""
    sim, pol = _run((_job(1, 0, 100), _job(2, 55, 600)), learned=True)
    assert pol.learned is not None
    seen: dict[int, dict[int, float]] = {}
    at_tick = pol.learned.at_tick

    def spy(s: Simulator) -> dict[int, float]:
        out = at_tick(s)
        seen[s.now] = dict(out)
        return out

    pol.learned.at_tick = spy  # type: ignore[method-assign]
    out = sim.run()
    assert [o.partition for o in out] == ["fast", "fast"]
    assert seen[0] == {0: 500.0}
    assert seen[60] == {1: 50.0}


def test_learned_predictions_keep_then_repredict() -> None:
    """A running job keeps its recorded prediction while it has not outlived it, then
    gets twice its elapsed time (no larger runtime seen), capped at its limit."""
    cluster = SimCluster.from_spec(parse_spec(SPEC))
    jobs, _ = build_jobs(Trace("t", "csv", (_job(1, 0, 100), _job(2, 0, 900))), cluster, [])
    done, running = jobs
    fast = cluster.by_name["fast"]
    f1 = cluster.names.index("f1")
    for j, start in ((done, 0), (running, 60)):
        j.parts, j.part, j.nodes, j.start = (fast,), fast, (f1,), start
    done.finish = 50
    pred = ControllerPredictions(lambda t: {"slow": 1.0, "fast": 2.0}[t])
    fake = SimpleNamespace(cluster=cluster, done=[done], running={1: running}, pending={}, now=60)
    assert pred.at_tick(fake) == {1: 50.0}  # type: ignore[arg-type]
    fake.now = 150  # elapsed 90 < the kept 100 reference seconds
    assert pred.at_tick(fake) == {1: 50.0}  # type: ignore[arg-type]
    fake.now = 180  # elapsed 120: outlived, 2 x 120 = 240 reference s
    assert pred.at_tick(fake) == {1: 120.0}  # type: ignore[arg-type]


def _capture_cached(pol: OptimizerPolicy, seen: dict[int, dict[int, float]]) -> None:
    place = pol.place

    def spy(sim: Simulator, job: SimJob) -> tuple[int, ...]:
        out = place(sim, job)
        seen[sim.now] = dict(pol._cached_runtimes)
        return out

    pol.place = spy  # type: ignore[method-assign]


def test_cache_lag_delays_what_optsub_sees() -> None:
    """The tick at 0 caches job 0's prediction; optsub sees it from 0 + lag."""
    jobs = tuple(_job(i + 1, t, 100, gpus=1.0) for i, t in enumerate((0, 1, 2)))
    for lag, visible in ((2, [False, False, True]), (0, [True, True, True])):
        sim, pol = _run(jobs, learned=True, cache_lag=lag)
        seen: dict[int, dict[int, float]] = {}
        _capture_cached(pol, seen)
        sim.run()
        # at t=0 optsub places job 0 before the tick of that instant caches anything
        assert [0 in seen[t] for t in (1, 2)] == visible[1:]
        assert seen[0] == {}


def test_overlay_counts_only_the_newest_submissions() -> None:
    """stale_cache: the tick at 0 caches nothing pending; jobs 1-3 are optsub's own
    submissions since; with overlay_max=2 job 4's problem holds only the last two."""
    jobs = tuple(_job(i + 1, i, 500, gpus=4.0) for i in range(5))
    counts: dict[int, int] = {}
    for cap in (None, 2):
        sim, pol = _run(jobs, interval=600, stale_cache=True, overlay_max=cap)
        cached = pol._cached

        def spy(s: Simulator, new: SimJob, cache: Any, cached: Any = cached) -> Any:
            problem = cached(s, new, cache)
            counts[new.idx] = sum(j.job_id != new.idx for j in problem.snapshot.jobs)
            return problem

        pol._cached = spy  # type: ignore[method-assign]
        sim.run()
        assert counts[4] == (4 if cap is None else 1 + 2)  # job 0 from the cache + overlay


def test_first_tick_and_configured_speeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """first_tick=0 ticks with the first submission; gpu_speed replaces the spec's speeds
    in the optimizer (a 1,000 s limit on the slow partition is 250 s on fast at 4.0)."""
    runtimes: list[float] = []
    rank = optpolicy.rank_new_job

    def spy(problem: Any, job_id: int, allowed: Any, **kw: Any) -> Any:
        r = rank(problem, job_id, allowed, **kw)
        runtimes.extend(c.runtime for c in r.candidates if c.partition == "fast")
        return r

    monkeypatch.setattr(optpolicy, "rank_new_job", spy)
    ticks: dict[int | None, list[int]] = {}
    for first in (0, None):
        sim, pol = _run((_job(1, 5, 100, gpus=1.0), _job(2, 70, 100)), first_tick=first)
        replan = pol.replan
        at: list[int] = []

        def tick(s: Simulator, replan: Any = replan, at: list[int] = at) -> Any:
            at.append(s.now)
            return replan(s)

        pol.replan = tick  # type: ignore[method-assign]
        sim.run()
        ticks[first] = at
    assert ticks[0][:2] == [5, 65] and ticks[None][0] == 65
    runtimes.clear()
    sim, _ = _run((_job(1, 0, 100, gpus=1.0),), gpu_speed={"slow": 1.0, "fast": 4.0})
    sim.run()
    assert runtimes == [250.0]


def test_launch_delay_holds_the_nodes() -> None:
    """launch_s: a job holds its nodes that much beyond its runtime, so the next one on
    the same GPUs starts that much later."""
    spec = parse_spec(SPEC)
    jobs = (_job(1, 0, 100, gpus=4.0), _job(2, 0, 100, gpus=4.0))
    trace = Trace("t", "csv", jobs)
    for launch in (0, 2):
        out = simulate(trace, spec, "slurm-multi", launch_s=launch).outcomes
        assert [(o.start, o.finish) for o in out] == [(0, 100 + launch), (0, 50 + launch)]
    one = parse_spec({**SPEC, "partitions": [{"name": "slow", "nodes": ["s1"]}]})
    out = simulate(trace, one, "slurm-multi", launch_s=2).outcomes
    assert [(o.start, o.finish) for o in out] == [(0, 102), (102, 204)]


def _history(n: int, share: float, part: str = "fast") -> list[FinishedJob]:
    info = JobInfo(user="u", runtime_s=share * 1000, time_limit_s=1000, name="train")
    return [FinishedJob(info, part, share * 1000, 1000.0) for _ in range(n)]


def test_limit_shares_from_history() -> None:
    """limit_ratio: the 90th percentile of runtime / limit, per partition and site-wide,
    once 20 finished jobs are known; none before."""
    pred = ControllerPredictions(lambda t: 1.0, _history(19, 0.1), limit_ratio=True)
    assert pred.ratios([]) == {}
    hist = _history(18, 0.1) + _history(2, 0.5, part="slow")
    pred = ControllerPredictions(lambda t: 1.0, hist, limit_ratio=True)
    assert pred.ratios([]) == {"*": 0.1}  # 18th of 20 sorted; no partition has 20
    assert ControllerPredictions(lambda t: 1.0, hist).ratios([]) == {}


def test_optsub_expects_running_jobs_to_use_their_share() -> None:
    """Job 1 runs on fast from t=1 (limit 1,000 s; the live code reads a start at 0 as
    unknown). Job 2 at t=11: without shares fast frees at the limit and slow (free)
    wins; with the learned share 0.1 (from the history the cache held before the first
    submission) fast frees at 101 s and wins."""
    jobs = (_job(1, 1, 100), _job(2, 11, 100))
    got = {}
    for share in (False, True):
        sim, _ = _run(jobs, interval=600, first_tick=None, learned=True, limit_ratio=share,
                      history=_history(20, 0.1))  # fmt: skip
        got[share] = [o.partition for o in sim.run()]
    assert got == {False: ["fast", "slow"], True: ["fast", "fast"]}
