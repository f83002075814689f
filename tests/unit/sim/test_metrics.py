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


def test_kth_conformance(kth_path: Path) -> None:
    """All 28,489 records: mean wait 4.275 h, mean bounded slowdown 193.8 (to 0.1 %)."""
    tr = read_swf(kth_path, cleaning=Cleaning.none())
    outs = recorded_outcomes(tr)
    assert len(outs) == 28489
    m = summarize(outs, total_cpus=100)
    assert m.wait.mean / 3600 == pytest.approx(4.275, rel=1e-3)
    assert m.bounded_slowdown.mean == pytest.approx(193.8, rel=1e-3)
