"""Engine invariants: capacity, EASY reservations, determinism, completion, policies."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from slurmopt.clusterspec import ClusterSpec, parse_spec
from slurmopt.sim.cluster import SimCluster
from slurmopt.sim.engine import Simulator
from slurmopt.sim.policies import BASELINES, make_policy
from slurmopt.sim.run import simulate
from slurmopt.sim.traces import Trace, TraceJob
from slurmopt.sim.workload import build_jobs


def spec_of(shared: bool = False, **extra: Any) -> ClusterSpec:
    """Two GPU partitions (slow a, fast b; sharing node b1 if ``shared``) and a CPU partition."""
    data: dict[str, Any] = {
        "name": "t",
        "nodes": [
            {"name": "a[1-3]", "cpus": 8, "memory_mb": 8000, "gpus": 2, "gpu_type": "slow"},
            {"name": "b[1-2]", "cpus": 8, "memory_mb": 8000, "gpus": 4, "gpu_type": "fast"},
            {"name": "c[1-4]", "cpus": 4, "memory_mb": 4000},
        ],
        "partitions": [
            {"name": "a", "nodes": ["a[1-3]", "b1"] if shared else ["a[1-3]"]},
            {"name": "b", "nodes": ["b[1-2]"]},
            {"name": "cpu", "nodes": ["c[1-4]"]},
        ],
        "gpu_speed": {"slow": 1.0, "fast": 2.0},
        "reference_gpu_type": "slow",
        **extra,
    }
    return parse_spec(data)


def random_trace(seed: int, n: int = 150, limits: bool = False) -> Trace:
    rng = random.Random(seed)
    jobs = []
    t = 0
    for i in range(n):
        t += rng.randint(0, 40)
        gpus = rng.choice([0, 0.5, 1, 2, 4, 6])
        run = rng.randint(1, 400)
        jobs.append(
            TraceJob(
                job_id=i + 1,
                submit=t,
                runtime=run,
                wait=0,
                requested_time=run + rng.randint(0, 200) if limits else None,
                cpus=float(rng.randint(1, 4)),
                gpus=float(gpus),
                memory_mb=float(rng.randint(0, 3000)),
                nodes=1 if rng.random() < 0.5 else None,
                user=str(rng.randint(1, 5)),
                partition=rng.choice(["a", "b", None]),
            )
        )
    return Trace(name=f"rand{seed}", format="csv", jobs=tuple(jobs))


def check_capacity(sim: Simulator) -> None:
    """Sweep every node's allocations over time: never above capacity."""
    cl = sim.cluster
    events: list[tuple[int, int, int, int, int, int]] = []
    for j in sim.jobs:
        k, c, g, m = j.shapes[j.part]
        assert len(j.nodes) == k and len(set(j.nodes)) == k
        for i in j.nodes:
            assert i in cl.partitions[j.part].node_set
            events.append((j.finish, 0, i, -c, -g, -m))
            events.append((j.start, 1, i, c, g, m))
    used = [[0, 0, 0] for _ in cl.names]
    for _, _, i, c, g, m in sorted(events):
        u = used[i]
        u[0] += c
        u[1] += g
        u[2] += m
        assert u[0] <= cl.cap_cpu[i] and u[1] <= cl.cap_gpu[i] and u[2] <= cl.cap_mem[i]


def run_sim(trace: Trace, policy: str, seed: int = 0, spec: ClusterSpec | None = None) -> Simulator:
    cluster = SimCluster.from_spec(spec or spec_of())
    jobs, rejected = build_jobs(trace, cluster, ())
    assert len(rejected) < len(trace.jobs) / 5  # 6-GPU single-node jobs fit nowhere
    sim = Simulator(cluster, jobs, make_policy(policy, seed=seed), check=True)
    sim.run()
    return sim


@pytest.mark.parametrize("policy", sorted(BASELINES))
@pytest.mark.parametrize("seed", [1, 2])
def test_capacity_and_completion(policy: str, seed: int) -> None:
    """Partitions a and b share node b1: one pool of resources."""
    sim = run_sim(random_trace(seed, limits=seed == 2), policy, seed, spec_of(shared=True))
    assert len(sim.done) == len(sim.jobs) and not sim.pending and not sim.running
    check_capacity(sim)
    for j in sim.jobs:
        assert j.submit <= j.start < j.finish
        assert j.part in j.parts and j.part in j.allowed
        assert j.finish - j.start == j.runtime[j.part]


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_easy_never_delays_reserved_job(seed: int) -> None:
    """With exact estimates, a job starts no later than its first reservation.

    (Disjoint partitions: with shared nodes another partition's reservation,
    made in a later pass for a job of higher priority, may take nodes first.)
    """
    sim = run_sim(random_trace(seed, n=200), "as-submitted", seed)
    assert sim.first_shadow, "the trace should block some jobs"
    for idx, shadow in sim.first_shadow.items():
        assert sim.jobs[idx].start <= shadow


def test_easy_backfill_scenario() -> None:
    """A (2 nodes) runs; B (3 nodes) waits for A; short D backfills, long C does not."""
    spec = parse_spec(
        {
            "name": "e",
            "nodes": [{"name": "n[1-3]", "cpus": 1, "memory_mb": 100}],
            "partitions": [{"name": "p", "nodes": ["n[1-3]"]}],
        }
    )

    def job(i: int, submit: int, procs: int, run: int, limit: int) -> TraceJob:
        return TraceJob(i, submit, run, wait=0, requested_time=limit, cpus=float(procs))

    trace = Trace(
        "easy",
        "swf",
        (
            job(1, 0, 2, 100, 100),  # A
            job(2, 1, 3, 50, 50),  # B: needs every node, reserved at t=100
            job(3, 2, 1, 150, 150),  # C: would delay B
            job(4, 3, 1, 40, 90),  # D: ends (by its limit) before B's start
        ),
    )
    sim = run_sim(trace, "slurm-multi", spec=spec)
    a, b, c, d = sim.jobs
    assert (a.start, b.start) == (0, 100)
    assert d.start == 3
    assert c.start >= b.finish
    assert sim.stats.backfilled >= 1


def test_deterministic_per_seed() -> None:
    tr = random_trace(7)
    spec = spec_of()
    r1 = simulate(tr, spec, "as-submitted", seed=11)
    r2 = simulate(tr, spec, "as-submitted", seed=11)
    r3 = simulate(tr, spec, "as-submitted", seed=12)
    key = [(o.job_id, o.start, o.partition) for o in r1.outcomes]
    assert key == [(o.job_id, o.start, o.partition) for o in r2.outcomes]
    assert key != [(o.job_id, o.start, o.partition) for o in r3.outcomes]


def test_speed_and_affinity() -> None:
    """Runtime scales by reference / partition speed, per job type when the spec says."""
    spec = spec_of(job_type_speed={"rec": {"slow": 1.0, "fast": 0.5}})
    cluster = SimCluster.from_spec(spec)
    base = TraceJob(1, 0, 1000, wait=0, gpus=1.0, nodes=1)
    jobs, _ = build_jobs(
        Trace("s", "csv", (base, replace(base, job_id=2, job_type="rec"))), cluster
    )
    a, b = cluster.by_name["a"], cluster.by_name["b"]
    assert jobs[0].runtime == {a: 1000, b: 500}
    assert jobs[1].runtime == {a: 1000, b: 2000}
    assert jobs[0].best_runtime == 500


def test_eligibility_rules() -> None:
    cluster = SimCluster.from_spec(spec_of())
    cpu_job = TraceJob(1, 0, 10, wait=0, cpus=2.0)
    big = TraceJob(2, 0, 10, wait=0, gpus=3.0, nodes=1)  # no 'a' node has 3 GPUs
    spread = TraceJob(3, 0, 10, wait=0, gpus=6.0, cpus=6.0)  # 3 'a' nodes or 2 'b' nodes
    huge = TraceJob(4, 0, 10, wait=0, gpus=9.0, nodes=1)
    jobs, rejected = build_jobs(Trace("e", "csv", (cpu_job, big, spread, huge)), cluster)
    names = [tuple(cluster.partitions[p].name for p in j.allowed) for j in jobs]
    assert names == [("cpu",), ("b",), ("a", "b")]
    assert [j.job_id for j in rejected] == [4]
    assert jobs[2].shapes[cluster.by_name["a"]] == (3, 2000, 2, 0)


def test_load_scaling_compresses_arrivals() -> None:
    from slurmopt.sim.workload import scale_load

    tr = random_trace(8, n=20)
    fast = scale_load(tr, 4.0)
    assert [j.submit for j in fast] == [int(j.submit / 4.0) for j in tr]
    with pytest.raises(ValueError):
        scale_load(tr, 0)


def test_more_jobs_than_the_window_arriving_at_once_do_not_starve() -> None:
    """Issue 16 (a): 2,500 one-GPU jobs at t=0 on 2,500 free GPUs, window 1,000.

    Before, only the first window was tried and nothing retried the rest until
    a job ended (every job runs 10 h): the rest waited 10 h with idle GPUs.
    Now a truncated pass is continued after the last job it tried
    (``bf_continue``) ``retry_s`` later.
    """
    spec = parse_spec(
        {
            "name": "wide",
            "nodes": [{"name": "g[1-625]", "cpus": 8, "memory_mb": 8000, "gpus": 4}],
            "partitions": [{"name": "g", "nodes": ["g[1-625]"]}],
        }
    )
    jobs = tuple(
        TraceJob(job_id=i + 1, submit=0, runtime=36_000, wait=0, cpus=1.0, gpus=1.0, nodes=1)
        for i in range(2500)
    )
    trace = Trace(name="burst", format="csv", jobs=jobs)
    cluster = SimCluster.from_spec(spec)
    sim_jobs, _ = build_jobs(trace, cluster)
    sim = Simulator(cluster, sim_jobs, make_policy("slurm-multi"), window=1000, retry_s=30)
    out = sim.run()
    waits = sorted(o.start - o.submit for o in out)
    assert waits[-1] <= 2 * 30, waits[-1]
    assert sim.stats.truncated == 2
    check_capacity(sim)


def test_slurm_multi_orders_by_tier_then_listed_and_fast_variant_by_speed() -> None:
    """slurm-multi: PriorityTier first, then the listed (spec) order; -fast: fastest GPU first."""
    data: dict[str, Any] = {
        "name": "tiers",
        "nodes": [
            {"name": "s1", "cpus": 8, "memory_mb": 8000, "gpus": 2, "gpu_type": "slow"},
            {"name": "m1", "cpus": 8, "memory_mb": 8000, "gpus": 2, "gpu_type": "mid"},
            {"name": "f1", "cpus": 8, "memory_mb": 8000, "gpus": 2, "gpu_type": "fast"},
        ],
        "partitions": [
            {"name": "slow", "nodes": ["s1"]},
            {"name": "mid", "nodes": ["m1"], "priority_tier": 5},
            {"name": "fast", "nodes": ["f1"]},
        ],
        "gpu_speed": {"slow": 1.0, "mid": 2.0, "fast": 3.0},
        "reference_gpu_type": "slow",
    }
    spec = parse_spec(data)
    cluster = SimCluster.from_spec(spec)
    trace = Trace(
        name="one",
        format="csv",
        jobs=(TraceJob(job_id=1, submit=0, runtime=60, wait=0, cpus=1.0, gpus=1.0, nodes=1),),
    )
    jobs, _ = build_jobs(trace, cluster, ())
    sim = Simulator(cluster, jobs, make_policy("slurm-multi"))
    names = [p.name for p in cluster.partitions]
    order = make_policy("slurm-multi").place(sim, jobs[0])
    assert [names[p] for p in order] == ["mid", "slow", "fast"]
    order = make_policy("slurm-multi-fast").place(sim, jobs[0])
    assert [names[p] for p in order] == ["mid", "fast", "slow"]
    # the job starts in the first partition of that order where it fits now
    out = simulate(trace, spec, "slurm-multi-fast")
    assert out.outcomes[0].partition == "mid"
    data["partitions"][1].pop("priority_tier")
    out = simulate(trace, parse_spec(data), "slurm-multi-fast")
    assert out.outcomes[0].partition == "fast"
    out = simulate(trace, parse_spec(data), "slurm-multi")
    assert out.outcomes[0].partition == "slow"
