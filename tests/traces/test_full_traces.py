"""The trace readers and the runtime predictor over the full real traces (``../shared``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmopt.history.predict import Envelope, JobInfo, LastTwo, ReplayJob, evaluate
from slurmopt.sim.metrics import recorded_outcomes, summarize
from slurmopt.sim.traces import (
    Cleaning,
    read_alibaba_nodes,
    read_alibaba_pods,
    read_swf,
    read_trace,
)


def test_kth_conformance(kth_path: Path) -> None:
    """All 28,489 records: mean wait 4.275 h, mean bounded slowdown 193.8 (to 0.1 %)."""
    tr = read_swf(kth_path, cleaning=Cleaning.none())
    outs = recorded_outcomes(tr)
    assert len(outs) == 28489
    m = summarize(outs, total_cpus=100)
    assert m.wait.mean / 3600 == pytest.approx(4.275, rel=1e-3)
    assert m.bounded_slowdown.mean == pytest.approx(193.8, rel=1e-3)


def test_kth_real_file_is_complete(kth_path: Path) -> None:
    tr = read_trace(kth_path, "swf", cleaning=Cleaning.none())
    assert tr.records == len(tr) == 28489
    assert tr.max_nodes == 100 and tr.max_procs == 100
    assert tr.jobs == tuple(sorted(tr.jobs, key=lambda j: (j.submit, j.job_id)))


def test_alibaba_real_files(alibaba_dir: Path) -> None:
    tr = read_alibaba_pods(alibaba_dir / "openb_pod_list_default.csv")
    assert tr.records == 8152
    assert tr.dropped == {"never_started": 897}
    assert all(j.runtime > 0 and j.nodes == 1 for j in tr)
    nodes = read_alibaba_nodes(alibaba_dir / "openb_node_list_all_node.csv")
    assert len(nodes) == 1523
    gpu_nodes = read_alibaba_nodes(alibaba_dir / "openb_node_list_gpu_node.csv")
    assert len(gpu_nodes) == 1213 and all(n.model and n.gpus > 0 for n in gpu_nodes)


def test_envelope_beats_the_baseline_on_kth(kth_path: Path) -> None:
    jobs = [
        ReplayJob(
            j.submit,
            j.finish or j.submit,
            JobInfo(user=j.user, runtime_s=j.runtime, time_limit_s=j.requested_time, cpus=j.cpus),
        )
        for j in read_swf(kth_path).jobs
        if j.started
    ]
    base = evaluate(jobs, LastTwo())
    env = evaluate(jobs, Envelope())
    assert env.under_share < base.under_share
    assert env.median_abs_log < base.median_abs_log
    assert env.under_share <= 0.2 and env.median_abs_log <= 0.5
