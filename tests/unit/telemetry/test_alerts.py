"""Alert rules, windows, dedup and recovery; the anomaly detector; observations."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

from slurmopt.model import Job, JobState, Node, NodeState, Partition, Snapshot
from slurmopt.telemetry.alerts import AlertConfig, AlertEngine, AlertEvent
from slurmopt.telemetry.anomaly import AnomalyConfig, robust_z, score_series
from slurmopt.telemetry.gpus import GpuSample
from slurmopt.telemetry.probe import ProbeResult
from slurmopt.telemetry.series import (
    Observation,
    from_points,
    from_probe,
    from_snapshot,
    percentile,
)
from slurmopt.telemetry.store import GpuPoint

T0 = 1_800_000_000
GPU = "gpu-a1:gpu0"
NO_ANOMALY = AnomalyConfig(metrics=())


def engine(**kw: Any) -> tuple[AlertEngine, dict[str, Any]]:
    state: dict[str, Any] = {}
    cfg = AlertConfig(**{"anomaly": NO_ANOMALY, **kw})
    return AlertEngine(cfg, state), state


def step(eng: AlertEngine, at: int, *obs: Observation) -> list[AlertEvent]:
    eng.observe(obs)
    return eng.evaluate(at)


def util(at: int, value: float, job: int | None = 7) -> Observation:
    return Observation(at, GPU, "util_pct", value, job)


def test_gpu_idle_needs_the_whole_window_and_uses_a_sliding_mean() -> None:
    eng, _ = engine(gpu_idle_window_s=1800, gpu_idle_util_pct=5)
    fired: list[AlertEvent] = []
    # Busy for an hour, then idle: the whole-job mean stays high, the window does not.
    for m in range(0, 60, 5):
        fired += step(eng, T0 + m * 60, util(T0 + m * 60, 90))
    assert fired == []
    for m in range(60, 85, 5):  # 25 minutes idle: window not yet covered by idle samples
        fired += step(eng, T0 + m * 60, util(T0 + m * 60, 1))
    assert fired == []
    for m in range(85, 125, 5):
        fired += step(eng, T0 + m * 60, util(T0 + m * 60, 1))
    assert [(e.rule, e.status) for e in fired] == [("gpu_idle", "firing")]
    assert "job 7" in fired[0].message
    # Dedup: still idle, no new event. Recovery: busy again -> one resolved event.
    assert step(eng, T0 + 130 * 60, util(T0 + 130 * 60, 0)) == []
    ev = step(eng, T0 + 135 * 60, util(T0 + 135 * 60, 100))
    assert [(e.rule, e.status) for e in ev] == [("gpu_idle", "resolved")]
    assert ev[0].message.startswith("recovered:")


def test_gpu_idle_not_for_unallocated_gpu_or_new_job() -> None:
    eng, _ = engine(gpu_idle_window_s=600)
    ev: list[AlertEvent] = []
    for m in range(0, 30):
        ev += step(eng, T0 + m * 60, util(T0 + m * 60, 0, job=None))
    assert ev == []
    for m in range(30, 36):  # a new job started 5 minutes ago: not covered yet
        ev += step(eng, T0 + m * 60, util(T0 + m * 60, 0, job=8))
    assert ev == []


def test_temperature_needs_duration_and_recovers() -> None:
    eng, _ = engine(temperature_c=85, temperature_for_s=300)
    t = lambda at, v: Observation(at, GPU, "temp_c", v)  # noqa: E731
    assert step(eng, T0, t(T0, 90)) == []
    assert step(eng, T0 + 120, t(T0 + 120, 91)) == []
    assert step(eng, T0 + 200, t(T0 + 200, 80)) == []  # dipped: the clock restarts
    assert step(eng, T0 + 300, t(T0 + 300, 90)) == []
    ev = step(eng, T0 + 600, t(T0 + 600, 92))
    assert [(e.rule, e.status, e.severity) for e in ev] == [("temperature", "firing", "warning")]
    assert step(eng, T0 + 660, t(T0 + 660, 93)) == []
    ev = step(eng, T0 + 720, t(T0 + 720, 70))
    assert [e.status for e in ev] == ["resolved"]


def test_renotify() -> None:
    eng, _ = engine(temperature_for_s=0, renotify_s=600)
    t = lambda at: Observation(at, GPU, "temp_c", 95)  # noqa: E731
    assert [e.status for e in step(eng, T0, t(T0))] == ["firing"]
    assert step(eng, T0 + 300, t(T0 + 300)) == []
    again = step(eng, T0 + 600, t(T0 + 600))
    assert [e.status for e in again] == ["firing"] and again[0].since == T0


def test_ecc_growth_and_lost_gpu() -> None:
    eng, _ = engine(ecc_window_s=3600, ecc_corrected_growth=100)
    o = lambda at, m, v: Observation(at, GPU, m, v)  # noqa: E731
    assert step(eng, T0, o(T0, "ecc_uncorrected", 2), o(T0, "ecc_corrected", 10)) == []
    ev = step(eng, T0 + 60, o(T0 + 60, "ecc_uncorrected", 3), o(T0 + 60, "ecc_corrected", 50))
    assert [(e.rule, e.severity) for e in ev] == [("ecc_uncorrected_growth", "critical")]
    ev = step(eng, T0 + 120, o(T0 + 120, "ecc_corrected", 200))
    assert [e.rule for e in ev] == ["ecc_corrected_growth"]
    ev = step(eng, T0 + 180, o(T0 + 180, "lost", 1))
    assert [e.rule for e in ev] == ["gpu_lost"]


def test_stale_subject_keeps_its_alert_open() -> None:
    eng, state = engine(temperature_for_s=0, stale_s=600)
    assert step(eng, T0, Observation(T0, GPU, "temp_c", 99))
    assert step(eng, T0 + 3000) == []  # no news: no recovery notice
    assert f"temperature|{GPU}" in state["open"]
    json.dumps(state)  # the state is JSON-serializable


def snap(at: int, *, waits: list[int], node_flags: frozenset[str] = frozenset()) -> Snapshot:
    pending = [
        Job(
            job_id=i,
            name="j",
            user="u",
            state=JobState.PENDING,
            partitions=("a100", "h100"),
            submit_time=at - w,
        )
        for i, w in enumerate(waits)
    ]
    held = Job(
        job_id=99,
        name="h",
        user="u",
        state=JobState.PENDING,
        partitions=("a100",),
        submit_time=at - 10**6,
        held=True,
    )
    jobs = (*pending, held)
    nodes = (Node(name="gpu-a1", state=NodeState.IDLE, flags=node_flags, reason="bad GPU"),)
    parts = (
        Partition(name="a100", nodes=("gpu-a1",)),
        Partition(name="h100", nodes=()),
        Partition(name="cpu", nodes=()),
    )
    return Snapshot(taken_at=at, nodes=nodes, partitions=parts, jobs=jobs)


def test_partition_wait_p90_and_node_unavailable() -> None:
    eng, _ = engine(wait_p90_s=3600, wait_for_s=600, node_unavailable_for_s=0)
    long = [100] + [7200] * 9
    assert step(eng, T0, *from_snapshot(snap(T0, waits=long))) == []
    ev = step(
        eng, T0 + 600, *from_snapshot(snap(T0 + 600, waits=long, node_flags=frozenset({"DRAIN"})))
    )
    got = sorted((e.rule, e.subject) for e in ev)
    assert got == [
        ("node_unavailable", "gpu-a1"),
        ("partition_wait_p90", "partition:a100"),
        ("partition_wait_p90", "partition:h100"),
    ]
    assert any("DRAIN" in e.message and "bad GPU" in e.message for e in ev)
    # Queue drained, node resumed: three recovery notices.
    ev = step(eng, T0 + 700, *from_snapshot(snap(T0 + 700, waits=[])))
    assert sorted(e.status for e in ev) == ["resolved"] * 3


def test_from_snapshot_p90_skips_held_jobs() -> None:
    obs = {(o.subject, o.metric): o for o in from_snapshot(snap(T0, waits=[10, 20, 30]))}
    assert obs[("partition:a100", "pending_jobs")].value == 3
    assert obs[("partition:a100", "wait_p90_s")].value == percentile([10, 20, 30], 0.9)
    assert ("partition:cpu", "wait_p90_s") not in obs
    assert percentile([1, 2, 3, 4], 0.5) == 2.5


def test_observations_from_probe_and_points() -> None:
    p = ProbeResult(
        "n1",
        float(T0),
        gpus=(
            GpuSample(
                0,
                uuid="a",
                util_sm_pct=40,
                temperature_c=60,
                ecc_aggregate_uncorrected=2,
                ecc_volatile_corrected=5,
                job_id=3,
            ),
            GpuSample(1, lost=True),
        ),
        nvml_ok=True,
    )
    got = {(o.subject, o.metric): o for o in from_probe(p)}
    assert got[("n1:gpu0", "util_pct")].job_id == 3
    assert got[("n1:gpu0", "ecc_uncorrected")].value == 2
    assert got[("n1:gpu0", "lost")].value == 0 and got[("n1:gpu1", "lost")].value == 1
    assert ("n1:gpu1", "temp_c") not in got and ("n1:gpu0", "power_w") not in got
    pts = from_points([GpuPoint(T0, "n1", 2, util_pct=5.0, temp_c=None, job_id=4)])
    assert [(o.subject, o.metric, o.job_id) for o in pts] == [("n1:gpu2", "util_pct", 4)]


# -- anomaly detection ------------------------------------------------------------


def test_robust_z_ignores_baseline_outliers() -> None:
    base = [60.0] * 20 + [200.0]  # one spike in the baseline
    s = robust_z([61.0, 60.5], base, min_scale=0.5)
    assert abs(s.z) < 2 and s.baseline_median == 60.0


def test_slow_temperature_drift_is_flagged_below_any_fixed_threshold() -> None:
    rnd = random.Random(1)
    cfg = AnomalyConfig(metrics=("temp_c",), baseline_s=3 * 3600, recent_s=900, z_threshold=4)
    eng, _ = engine(anomaly=cfg, temperature_c=85)
    events: list[AlertEvent] = []
    at = T0
    # Three hours around 62C, then a slow creep to 71C: far below the 85C limit.
    for i in range(180):
        at = T0 + i * 60
        events += step(eng, at, Observation(at, GPU, "temp_c", 62 + rnd.uniform(-1, 1)))
    assert events == []
    for i in range(30):
        at += 60
        events += step(eng, at, Observation(at, GPU, "temp_c", 62 + 0.3 * i + rnd.uniform(-1, 1)))
    rules = [(e.rule, e.status) for e in events]
    assert ("anomaly_temp_c", "firing") in rules and ("temperature", "firing") not in rules


def test_no_false_positive_on_noise_and_needs_enough_points() -> None:
    rnd = random.Random(2)
    cfg = AnomalyConfig(metrics=("power_w",), z_threshold=4)
    series = [(T0 + i * 60, 300 + rnd.gauss(0, 5), None) for i in range(240)]
    now = series[-1][0]
    sc = score_series(series, now, cfg)
    assert sc is not None and abs(sc.z) < 4
    assert score_series(series[-5:], now, cfg) is None
    assert score_series(series, now, replace(cfg, min_recent_points=100)) is None


def test_anomaly_compares_like_with_like_load() -> None:
    cfg = AnomalyConfig(metrics=("temp_c",), baseline_s=3 * 3600, recent_s=900, z_threshold=4)

    def run(busy_temp_drift: float, c: AnomalyConfig = cfg) -> list[tuple[str, str]]:
        rnd = random.Random(3)
        eng, _ = engine(anomaly=c, temperature_c=95)
        out: list[AlertEvent] = []
        # Alternating hours idle (35C at 0%) and busy (65C at 95%) for 3 h, then busy.
        for i in range(200):
            at = T0 + i * 60
            busy = (i // 60) % 2 == 1 or i >= 180
            drift = busy_temp_drift * max(0, i - 185) / 15 if busy else 0.0
            temp = (65 if busy else 35) + drift + rnd.uniform(-1, 1)
            out += step(
                eng,
                at,
                Observation(at, GPU, "util_pct", 95 if busy else 0, 1),
                Observation(at, GPU, "temp_c", temp, 1),
            )
        return [(e.rule, e.status) for e in out]

    # Idle -> busy is not a drift: the baseline is the earlier busy hour, not the idle one.
    assert ("anomaly_temp_c", "firing") not in run(0.0)
    assert ("anomaly_temp_c", "firing") in run(0.0, replace(cfg, load_metric=None))
    # 12C hotter at the same load within 15 minutes is (still under the 95C limit).
    assert ("anomaly_temp_c", "firing") in run(12.0)
