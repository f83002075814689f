"""Metrics: definitions and conformance with the published KTH-SP2 figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmopt.sim.metrics import (
    JobOutcome,
    Stat,
    bounded_slowdown,
    recorded_outcomes,
    summarize,
    summarize_by,
)
from slurmopt.sim.traces import Cleaning, read_swf


def test_bounded_slowdown_definition() -> None:
    assert bounded_slowdown(0, 100) == 1.0
    assert bounded_slowdown(100, 100) == 2.0
    assert bounded_slowdown(95, 5) == 10.0  # run counted as 10 s
    assert bounded_slowdown(0, 1) == 1.0  # never below 1


def test_summarize_small() -> None:
    outs = [
        JobOutcome(1, submit=0, start=0, finish=10, cpus=2, gpus=1, best_runtime=5),
        JobOutcome(2, submit=0, start=10, finish=30, cpus=1, gpus=0, job_class="b"),
    ]
    m = summarize(outs, total_cpus=4, total_gpus=2)
    assert m.jobs == 2
    assert m.wait.mean == 5 and m.jct.mean == 20 and m.makespan == 30
    assert m.bounded_slowdown.mean == pytest.approx((1 + 1.5) / 2)
    assert m.utilization == pytest.approx((2 * 10 + 1 * 20) / (4 * 30))
    assert m.gpu_utilization == pytest.approx(10 / (2 * 30))
    assert m.lower_bound_jct == pytest.approx((5 + 20) / 2)
    assert m.ratio_to_lower_bound == pytest.approx(20 / 12.5)
    by = summarize_by(outs)
    assert set(by) == {"", "b"} and by["b"].jct.mean == 30


def test_stat_percentiles() -> None:
    s = Stat.of(list(range(101)))
    assert (s.mean, s.median, s.p95) == (50, 50, 95)


def test_kth_sample_matches_the_raw_fields(kth_sample: Path) -> None:
    """Mean wait and bounded slowdown over the real sample, against the SWF fields read here.

    (The published figures over all 28,489 records are checked in tests/traces.)
    """
    rows = [
        line.split()
        for line in kth_sample.read_text().splitlines()
        if line.strip() and not line.startswith(";")
    ]
    waits = [float(r[2]) for r in rows]
    runs = [float(r[3]) for r in rows]
    outs = recorded_outcomes(read_swf(kth_sample, cleaning=Cleaning.none()))
    assert len(outs) == len(rows) == 400
    m = summarize(outs, total_cpus=100)
    assert m.wait.mean == pytest.approx(sum(waits) / len(waits))
    bsld = [max(1.0, (w + r) / max(r, 10.0)) for w, r in zip(waits, runs, strict=True)]
    assert m.bounded_slowdown.mean == pytest.approx(sum(bsld) / len(bsld))
