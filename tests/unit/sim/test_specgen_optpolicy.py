"""Spec generation from real data, and the optimizer policies inside the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmopt.clusterspec import load_spec, parse_spec
from slurmopt.sim.optpolicy import OptimizerPolicy, safe_type
from slurmopt.sim.run import simulate
from slurmopt.sim.specgen import (
    affinities,
    alibaba_spec,
    class_speed,
    kth_hetero_spec,
    thin_nodes,
)
from slurmopt.sim.traces import AlibabaNode, Trace, TraceJob
from slurmopt.sim.workload import assign_job_type, load_gavel

from .conftest import GAVEL as GAVEL_CSV

GAVEL = {
    "cnn": {"k80": 1.0, "p100": 3.0, "v100": 4.0},
    "rec": {"k80": 2.0, "p100": 4.0, "v100": 2.0},
    "lm": {"k80": 1.0, "p100": 2.0, "v100": 4.0},
}


def test_class_speed_and_affinities() -> None:
    med = class_speed(GAVEL)
    assert med == {"k80": 0.25, "p100": 0.75, "v100": 1.0}
    aff = affinities(GAVEL, {"P100": "p100", "V100": "v100"}, {"P100": 0.75, "V100": 1.0})
    assert aff["cnn"] == {"P100": 0.75, "V100": 1.0}  # the median job type
    assert aff["rec"]["P100"] == pytest.approx(2.0)  # rec runs 2x faster on P100 than V100
    assert aff["lm"]["P100"] == pytest.approx(0.5)


def test_generated_specs_parse(tmp_path: Path) -> None:
    nodes = [
        AlibabaNode("openb-node-0000", 32.0, 1000, 0, None),
        AlibabaNode("openb-node-0001", 32.0, 1000, 0, None),
        AlibabaNode("openb-node-0002", 64.0, 2000, 2, "P100"),
        AlibabaNode("openb-node-0003", 96.0, 4000, 8, "G2"),
        AlibabaNode("openb-node-0005", 96.0, 4000, 8, "G2"),
    ]
    p = tmp_path / "a.toml"
    p.write_text(alibaba_spec(nodes, GAVEL))
    spec = load_spec(p)
    assert [n.name for n in spec.nodes][:3] == [
        "openb-node-0000",
        "openb-node-0001",
        "openb-node-0002",
    ]
    assert {q.name: len(q.nodes) for q in spec.partitions} == {"cpu": 2, "g2": 2, "p100": 1}
    thin = thin_nodes(nodes, 2)
    assert [n.name[-1] for n in thin] == ["0", "2", "3"]
    assert spec.reference_gpu_type == "G2" and spec.gpu_speed["P100"] == 0.75
    assert spec.job_type_speed["rec"]["P100"] == pytest.approx(2.0)
    k = tmp_path / "k.toml"
    k.write_text(kth_hetero_spec(GAVEL))
    kspec = load_spec(k)
    assert sum(n.gpus for n in kspec.nodes) == 164 and kspec.reference_gpu_type == "k80"


def test_shipped_specs_match_real_node_list() -> None:
    root = Path(__file__).resolve().parents[3]
    spec = load_spec(root / "etc" / "clusters" / "alibaba-gpu-2023.toml")
    assert len(spec.nodes) == 1523 and sum(n.gpus for n in spec.nodes) == 6212
    assert len(load_gavel(GAVEL_CSV)) == 26


def test_job_type_assignment_is_deterministic() -> None:
    a = TraceJob(1, 0, 10, user="7")
    b = TraceJob(2, 5, 99, user="7")
    c = TraceJob(3, 0, 10, user=None, gpus=0.5, cpus=6.0)
    types = ["z", "a", "m"]
    assert assign_job_type(a, types) == assign_job_type(b, types)  # same user, same type
    assert assign_job_type(c, types) in types
    assert assign_job_type(TraceJob(4, 0, 1, job_type="own"), types) == "own"
    assert safe_type("LM (batch size 10)") == "LM_batch_size_10"


SPEC = {
    "name": "o",
    "nodes": [
        {"name": "s[1-2]", "cpus": 8, "memory_mb": 8000, "gpus": 2, "gpu_type": "slow"},
        {"name": "f1", "cpus": 8, "memory_mb": 8000, "gpus": 2, "gpu_type": "fast"},
    ],
    "partitions": [{"name": "slow", "nodes": ["s[1-2]"]}, {"name": "fast", "nodes": ["f1"]}],
    "gpu_speed": {"slow": 1.0, "fast": 3.0},
    "reference_gpu_type": "slow",
}


def _trace(n: int = 30, gap: int = 150) -> Trace:
    jobs = tuple(
        TraceJob(i, i * gap, 300 + 7 * i, wait=0, gpus=1.0 + i % 2, cpus=2.0, nodes=1)
        for i in range(1, n + 1)
    )
    return Trace("o", "csv", jobs)


@pytest.mark.parametrize("policy", ["optsub", "auto"])
def test_optimizer_policies_run_the_live_problem(policy: str) -> None:
    spec = parse_spec(SPEC)
    interval = 60 if policy == "auto" else None
    r1 = simulate(_trace(), spec, policy, seed=3, controller_interval=interval)
    r2 = simulate(_trace(), spec, policy, seed=3, controller_interval=interval)
    assert [(o.start, o.partition) for o in r1.outcomes] == [
        (o.start, o.partition) for o in r2.outcomes
    ]
    slow = simulate(_trace(), spec, "slurm-multi")
    assert r1.metrics.jct.mean < slow.metrics.jct.mean  # speed-aware beats Slurm's rule
    assert len(r1.outcomes) == 30
    if policy == "auto":
        assert r1.stats.replans > 0


def test_optimizer_snapshot_mirrors_state() -> None:
    spec = parse_spec(SPEC)
    seen: list[int] = []

    class Probe(OptimizerPolicy):
        def place(self, sim, job):  # type: ignore[no-untyped-def]
            snap = self.snapshot(sim)
            used = sum(sum(n.gpus_used.values()) for n in snap.nodes)
            assert used == sim.used_gpu
            assert len(snap.running) == len(sim.running)
            assert {n.name for n in snap.nodes} == {"s1", "s2", "f1"}
            seen.append(used)
            return super().place(sim, job)

    import slurmopt.sim.policies as pol

    orig = pol.make_policy
    try:
        pol.make_policy = lambda name, seed=0, **kw: Probe("optsub", seed=seed)  # type: ignore[assignment]
        import slurmopt.sim.run as run_mod

        run_mod.make_policy = pol.make_policy  # type: ignore[attr-defined]
        simulate(_trace(10, gap=20), spec, "optsub")
    finally:
        pol.make_policy = orig
        run_mod.make_policy = orig  # type: ignore[attr-defined]
    assert len(seen) == 10 and max(seen) > 0


def test_optsub_shortcut_changes_nothing() -> None:
    spec = parse_spec(SPEC)
    for gap in (20, 150):
        fast = simulate(_trace(40, gap=gap), spec, "optsub")
        full = simulate(_trace(40, gap=gap), spec, "optsub", policy_options={"shortcut": False})
        assert [(o.start, o.partition) for o in fast.outcomes] == [
            (o.start, o.partition) for o in full.outcomes
        ]
        assert full.stats.extra["shortcut_decisions"] == 0
        if gap == 150:  # the queue is empty at every submission
            assert fast.stats.extra["shortcut_decisions"] > 0


def test_stale_cache_sees_ended_jobs_as_running() -> None:
    """``stale_cache``: optsub ranks on the last controller tick's state (sim-vs-real).

    Job 1 fills the fast node at t=0 (10 s there, limit 2,000 s); the tick at
    t=8 caches it running. Job 2 arrives at t=12, after job 1 ended: on the live
    state the fast node is free; on the cache it is busy until the limit, so
    the slow node wins.
    """
    spec = parse_spec(
        {
            "name": "two",
            "nodes": [
                {"name": "s1", "cpus": 8, "memory_mb": 8000, "gpus": 4, "gpu_type": "slow"},
                {"name": "f1", "cpus": 8, "memory_mb": 8000, "gpus": 4, "gpu_type": "fast"},
            ],
            "partitions": [
                {"name": "slow", "nodes": ["s1"]},
                {"name": "fast", "nodes": ["f1"]},
            ],
            "gpu_speed": {"slow": 1.0, "fast": 2.0},
            "reference_gpu_type": "slow",
        }
    )
    jobs = (
        TraceJob(job_id=1, submit=0, runtime=20, requested_time=2000, gpus=4.0, nodes=1),
        TraceJob(job_id=2, submit=12, runtime=100, requested_time=2000, gpus=4.0, nodes=1),
    )
    trace = Trace(name="t", format="csv", jobs=jobs)
    live = simulate(trace, spec, "auto", controller_interval=8)
    stale = simulate(
        trace, spec, "auto", controller_interval=8, policy_options={"stale_cache": True}
    )
    assert [o.partition for o in live.outcomes] == ["fast", "fast"]
    assert [o.partition for o in stale.outcomes] == ["fast", "slow"]


def _burst(n: int = 60) -> Trace:
    """Bursts of submissions (several per second) with mixed sizes: a queue builds up."""
    jobs = tuple(
        TraceJob(i, (i // 4) * 3, 200 + 37 * (i % 7), wait=0, gpus=1.0 + i % 3, cpus=2.0, nodes=1)
        for i in range(1, n + 1)
    )
    return Trace("burst", "csv", jobs)


@pytest.mark.parametrize("policy", ["optsub", "auto"])
def test_kept_queue_schedule_ranks_as_a_rebuild(policy: str) -> None:
    """optsub in the simulator keeps the queue's list schedule between submissions
    (issue 16): every ranking made on it equals a full rebuild's, the running jobs'
    profiles it keeps (``slurmopt.sim.runbase``) equal ``base_profiles`` of the full
    snapshot at every rebuild (both checked by ``verify``), and the replay equals one
    that rebuilds the problem from the full snapshot at every submission."""
    spec = parse_spec(SPEC)
    interval = 60 if policy == "auto" else None
    evals = {"replan_evals": 50}
    kept = simulate(
        _burst(),
        spec,
        policy,
        controller_interval=interval,
        policy_options={"verify": True, **evals},
    )
    full = simulate(
        _burst(), spec, policy, controller_interval=interval,
        policy_options={"incremental": False, **evals},
    )  # fmt: skip
    assert [(o.start, o.partition) for o in kept.outcomes] == [
        (o.start, o.partition) for o in full.outcomes
    ]
    assert kept.stats.extra["kept_schedule_rankings"] > 0
    assert full.stats.extra["kept_schedule_rankings"] == 0
    if policy == "auto":
        assert kept.stats.moves > 0  # moves invalidate the kept schedule


def test_kept_queue_schedule_on_multi_node_jobs_with_limits(kth_sample: Path) -> None:
    """The same on the KTH-SP2 sample as GPU jobs (multi-node, time limits that end
    early) on the heterogeneous cluster, at twice the load."""
    from slurmopt.sim.traces import read_swf
    from slurmopt.sim.workload import as_gpu_jobs, scale_load

    spec = load_spec(Path(__file__).resolve().parents[3] / "etc/clusters/kth-sp2-hetero.toml")
    trace = scale_load(as_gpu_jobs(read_swf(kth_sample)), 2.0)
    kept = simulate(trace, spec, "optsub", policy_options={"verify": True})
    full = simulate(trace, spec, "optsub", policy_options={"incremental": False})
    assert [(o.start, o.partition) for o in kept.outcomes] == [
        (o.start, o.partition) for o in full.outcomes
    ]
    assert kept.stats.extra["kept_schedule_rankings"] > 0


def test_kept_queue_schedule_with_jobs_outliving_their_limit() -> None:
    """Jobs that run past their time limit stay in the running jobs' profiles a
    second after now, whatever now is: their component's kept schedule is rebuilt
    at every decision, and rankings stay those of a full rebuild (``verify``).
    Here every GPU is held past its limit while submissions queue up."""
    spec = parse_spec(SPEC)
    hogs = tuple(
        TraceJob(i, 0, 3000, wait=0, requested_time=100, gpus=2.0, cpus=2.0, nodes=1)
        for i in (1, 2, 3)
    )
    queued = tuple(
        TraceJob(i, 150 + 50 * i, 500, wait=0, requested_time=500, gpus=1.0, cpus=1.0, nodes=1)
        for i in range(4, 24)
    )
    trace = Trace("late", "csv", hogs + queued)
    kept = simulate(trace, spec, "optsub", policy_options={"verify": True})
    full = simulate(trace, spec, "optsub", policy_options={"incremental": False})
    assert [(o.start, o.partition) for o in kept.outcomes] == [
        (o.start, o.partition) for o in full.outcomes
    ]
    assert kept.stats.extra["kept_schedule_rankings"] > 0
