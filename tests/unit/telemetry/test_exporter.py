"""The Prometheus exporter, scraped over real HTTP on 127.0.0.1."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slurmopt.cli.exporter import parse_listen, serve
from slurmopt.errors import SlurmUnavailable
from slurmopt.model import Job, JobRequest, JobState, Node, NodeState, Partition, Snapshot
from slurmopt.telemetry.exporter import (
    ControllerStats,
    SlurmoptCollector,
    Sources,
    controller_stats_from_db,
    predicted_waits,
)
from slurmopt.telemetry.store import GpuPoint

NOW = 1_800_000_000


def snapshot() -> Snapshot:
    nodes = (
        Node(
            "gpu-a1",
            NodeState.MIXED,
            cpus=64,
            cpus_alloc=8,
            memory_mb=512000,
            memory_alloc_mb=8000,
            gpus={"a100": 4},
            gpus_used={"a100": 2},
            partitions=("a100",),
        ),
        Node(
            "gpu-a2",
            NodeState.IDLE,
            flags=frozenset({"DRAIN"}),
            cpus=64,
            memory_mb=512000,
            gpus={"a100": 4},
            partitions=("a100",),
        ),
        Node(
            "gpu-t1", NodeState.IDLE, cpus=32, memory_mb=192000, gpus={"t4": 4}, partitions=("t4",)
        ),
    )
    parts = (
        Partition("a100", ("gpu-a1", "gpu-a2"), max_time_s=86400),
        Partition("t4", ("gpu-t1",), max_time_s=86400),
    )
    two = JobRequest(gpus_per_node=2, gpu_type="a100", time_limit_s=3600, mem_per_node_mb=1000)
    jobs = (
        Job(
            1,
            "run",
            "alice",
            JobState.RUNNING,
            ("a100",),
            request=two,
            nodes=("gpu-a1",),
            gpus_alloc={"a100": 2},
            start_time=NOW - 600,
            end_time=NOW + 3000,
            submit_time=NOW - 700,
            cpus_alloc=8,
            memory_alloc_mb=8000,
            gpu_indexes={"gpu-a1": (0, 1)},
        ),
        Job(
            2,
            "wait",
            "bob",
            JobState.PENDING,
            ("a100",),
            request=JobRequest(
                gpus_per_node=4, gpu_type="a100", time_limit_s=3600, mem_per_node_mb=1000
            ),
            submit_time=NOW - 300,
            start_time=NOW + 3000,
            priority=10,
        ),
        Job(
            3,
            "t4",
            "carol",
            JobState.PENDING,
            ("t4",),
            request=JobRequest(gpus_per_node=1),
            submit_time=NOW - 100,
            priority=5,
        ),
    )
    return Snapshot(taken_at=NOW, nodes=nodes, partitions=parts, jobs=jobs)


def scrape(collector: SlurmoptCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    server, _ = serve("127.0.0.1:0", collector)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            assert r.status == 200
            text = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def points() -> list[GpuPoint]:
    return [
        GpuPoint(NOW - 120, "gpu-a1", 0, "A100", 1, 10.0, 1000.0, 100.0, 50.0),
        GpuPoint(NOW - 60, "gpu-a1", 0, "A100", 1, 95.0, 2000.0, 300.0, 70.0),
        GpuPoint(NOW - 60, "gpu-a1", 1, "A100", 1, None, None, None, 40.0),
    ]


def test_scrape_queue_gpus_prediction_controller(points: list[GpuPoint]) -> None:
    stats = ControllerStats(
        runs=5,
        errors=1,
        moves_applied=3,
        last_started_at=NOW - 30,
        last_wall_s=1.5,
        decisions={"applied": 3, "observed": 4},
        gain_applied_s=1200.0,
    )
    c = SlurmoptCollector(
        Sources(snapshot=snapshot, points=lambda since: points, controller=lambda: stats),
        clock=lambda: float(NOW),
    )
    m = scrape(c)
    assert m[("slurmopt_partition_jobs", (("partition", "a100"), ("state", "pending")))] == 1
    assert m[("slurmopt_partition_jobs", (("partition", "a100"), ("state", "running")))] == 1
    assert m[("slurmopt_partition_gpus", (("partition", "a100"), ("state", "pending")))] == 4
    assert m[("slurmopt_partition_gpus", (("partition", "a100"), ("state", "running")))] == 2
    # gpu-a2 is drained: only gpu-a1's two free A100s count.
    assert m[("slurmopt_free_gpus", (("gpu_type", "a100"),))] == 2
    assert m[("slurmopt_free_gpus", (("gpu_type", "t4"),))] == 4
    waits = {k[1]: v for k, v in m.items() if k[0] == "slurmopt_partition_predicted_wait_seconds"}
    a100 = dict(next(k for k in waits if ("partition", "a100") in k))
    assert a100["source"] == "slurmopt"
    # Job 2 needs a whole node's 4 A100s: only after job 1 ends (NOW + 3000).
    assert waits[tuple(sorted(a100.items()))] == pytest.approx(3000, abs=60)
    assert m[("slurmopt_gpu_utilization_percent", (("gpu", "0"), ("node", "gpu-a1")))] == 95
    assert m[("slurmopt_gpu_temperature_celsius", (("gpu", "1"), ("node", "gpu-a1")))] == 40
    assert ("slurmopt_gpu_power_watts", (("gpu", "1"), ("node", "gpu-a1"))) not in m
    assert m[("slurmopt_controller_runs_total", ())] == 5
    assert m[("slurmopt_controller_errors_total", ())] == 1
    assert m[("slurmopt_controller_gain_seconds_total", ())] == 1200
    assert m[("slurmopt_controller_decisions_total", (("outcome", "observed"),))] == 4
    assert m[("slurmopt_controller_cycle_seconds", ())] == 1.5
    assert m[("slurmopt_exporter_source_up", (("source", "slurm"),))] == 1


def test_failing_source_and_slurm_estimate_fallback(points: list[GpuPoint]) -> None:
    calls = {"n": 0}

    def down() -> Snapshot:
        calls["n"] += 1
        raise SlurmUnavailable("slurmctld down")

    def no_optimizer(snap: Snapshot) -> Any:
        raise RuntimeError("no optimizer")

    c = SlurmoptCollector(
        Sources(snapshot=down, points=lambda since: points), refresh_s=60, clock=lambda: float(NOW)
    )
    m = scrape(c)
    assert m[("slurmopt_exporter_source_up", (("source", "slurm"),))] == 0
    assert m[("slurmopt_exporter_errors_total", (("source", "slurm"),))] == 1
    assert not any(k[0] == "slurmopt_partition_jobs" for k in m)  # no stale series
    assert ("slurmopt_gpu_utilization_percent", (("gpu", "0"), ("node", "gpu-a1"))) in m
    scrape(c)
    assert calls["n"] == 1  # cached within refresh_s
    # The prediction source failing does not hide the queue metrics.
    c2 = SlurmoptCollector(
        Sources(snapshot=snapshot, predict=no_optimizer), clock=lambda: float(NOW)
    )
    m2 = scrape(c2)
    assert m2[("slurmopt_exporter_source_up", (("source", "prediction"),))] == 0
    assert m2[("slurmopt_partition_jobs", (("partition", "t4"), ("state", "pending")))] == 1


def test_predicted_waits_falls_back_to_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    import slurmopt.optimize.problem as problem

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(problem.Problem, "build", classmethod(broken))
    src, waits = predicted_waits(snapshot())
    assert src == "slurm" and waits == {"a100": [3000.0]}


def test_controller_stats_from_db(tmp_path: Path) -> None:
    from slurmopt.history import db, orm

    engine = db.make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    db.upgrade(engine)
    with db.transaction(engine) as s:
        s.add(orm.ControllerRun(started_at=NOW - 120, mode="enforce", moves_applied=2, wall_s=0.5))
        s.add(orm.ControllerRun(started_at=NOW - 60, mode="enforce", error="boom", wall_s=2.0))
        s.add(
            orm.Decision(
                job_id=1, decided_at=NOW - 120, applied=True, gain_s=300.0, outcome="applied"
            )
        )
        s.add(orm.Decision(job_id=2, decided_at=NOW - 120, gain_s=50.0, outcome="observed"))
        for component in ("ingest", "ingest", "controller"):
            s.add(orm.TrustRefusal(at=NOW, component=component, who="m", what="f", why="w"))
    st = controller_stats_from_db(engine)
    assert st.refusals == {"ingest": 2, "controller": 1}
    from slurmopt.telemetry.exporter import controller_metrics

    (ref,) = [m for m in controller_metrics(st) if m.name == "slurmopt_trust_refusals"]
    assert {s.labels["component"]: s.value for s in ref.samples if s.name.endswith("_total")} == {
        "ingest": 2,
        "controller": 1,
    }
    assert (st.runs, st.errors, st.moves_applied) == (2, 1, 2)
    assert (st.last_started_at, st.last_wall_s) == (NOW - 60, 2.0)
    assert st.decisions == {"applied": 1, "observed": 1} and st.gain_applied_s == 300.0


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_listen("[::1]:9100") == ("::1", 9100)
    assert parse_listen(":9100") == ("0.0.0.0", 9100)
    with pytest.raises(Exception, match="ADDR:PORT"):
        parse_listen("localhost")


def test_local_probe_points_merge_with_history(points: list[GpuPoint]) -> None:
    fresh = [GpuPoint(NOW, "gpu-a1", 0, "A100", None, 55.0, 3000.0, 250.0, 65.0)]
    c = SlurmoptCollector(
        Sources(points=lambda since: points, local_points=lambda: fresh), clock=lambda: float(NOW)
    )
    m = scrape(c)
    # The probe's sample is newer than the stored one of the same GPU: it wins.
    assert m[("slurmopt_gpu_utilization_percent", (("gpu", "0"), ("node", "gpu-a1")))] == 55
    assert m[("slurmopt_gpu_temperature_celsius", (("gpu", "1"), ("node", "gpu-a1")))] == 40
    assert m[("slurmopt_exporter_source_up", (("source", "probe"),))] == 1

    def broken() -> list[GpuPoint]:
        raise OSError("NVML hung")

    m2 = scrape(SlurmoptCollector(Sources(local_points=broken), clock=lambda: float(NOW)))
    assert m2[("slurmopt_exporter_source_up", (("source", "probe"),))] == 0
    assert not any(k[0] == "slurmopt_gpu_utilization_percent" for k in m2)


def test_exporter_probe_option_probes_this_node() -> None:
    """``--probe --no-slurm --no-db``: the real probe of this machine (no GPU here: no samples)."""
    from slurmopt.telemetry.serve import build_collector

    c = build_collector(None, no_slurm=True, no_db=True, refresh_s=1, probe=True)
    assert c.sources.snapshot is None and c.sources.points is None
    m = scrape(c)
    assert m[("slurmopt_exporter_source_up", (("source", "probe"),))] == 1
