"""``slurmopt ingest sacct`` on the live testbed (slurmdbd + MariaDB): jobs whose end was
never observed get their final state, real start/end and GPUs from accounting (also a
job cancelled before its --begin time, which sacct's time window misses), so the
report has no "left (state unknown)" row; without accounting nothing is guessed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from slurmopt.clusterspec import ClusterSpec
from slurmopt.history import db
from slurmopt.history.ingest import observe
from slurmopt.history.orm import JobRow
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker, slurm_cmd, wait_for


def accounting_on() -> bool:
    return "accounting_storage/slurmdbd" in slurm_cmd(["scontrol", "show", "config"]).stdout


def slurmopt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slurmopt", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ingest_sacct_fills_jobs_that_left_the_queue(
    jobs: JobTracker, tmp_path: Path, cluster_spec: ClusterSpec
) -> None:
    if not accounting_on():
        assert CliBackend().accounting(int(time.time()) - 86400) is None  # nothing guessed
        pytest.skip("testbed runs without accounting (up --no-accounting)")
    backend = CliBackend(timeout=30)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    t0 = int(time.time()) - 5
    # one GPU job that completes, one pending job cancelled: both seen only while queued
    gpu_part = next(
        p.name for p in cluster_spec.partitions if any(cluster_spec.node(n).gpus for n in p.nodes)
    )
    done = jobs.submit(
        *("-p", gpu_part, "--gpus=1", "-t", "2", "-o", "/dev/null", "--wrap", "sleep 2")
    )
    gone = jobs.submit("--begin=now+3600", "-t", "2", "-o", "/dev/null", "--wrap", "true")
    with db.transaction(engine) as s:
        observe(s, backend.snapshot())  # seen queued; never seen to end
    slurm_cmd(["scancel", str(gone)])  # cancelled before its --begin: outside sacct's window

    def final() -> dict[str, object] | None:
        res = slurmopt("ingest", "sacct", "--db", url, "--since", str(t0))
        assert res.returncode == 0, res.stderr
        counts: dict[str, object] = json.loads(res.stdout)
        with db.transaction(engine) as s:
            rows = s.execute(
                select(JobRow).where(JobRow.job_id.in_([done, gone]), JobRow.submit_time >= t0)
            ).scalars()
            if all(r.final_state for r in rows):
                return counts
        return None

    counts = wait_for(final, timeout=60, interval=2)
    assert counts["accounting"] is True
    with db.transaction(engine) as s:
        rows = {
            r.job_id: r
            for r in s.execute(
                select(JobRow).where(JobRow.job_id.in_([done, gone]), JobRow.submit_time >= t0)
            ).scalars()
        }
    ok, cancelled = rows[done], rows[gone]
    assert ok.final_state == "COMPLETED" and ok.exit_code == "0:0"
    assert ok.start_time is not None and ok.end_time is not None
    assert 1 <= ok.end_time - ok.start_time <= 60  # the real run, from accounting
    assert ok.gpus == 1
    assert cancelled.final_state == "CANCELLED" and cancelled.start_time is None  # never ran
    with db.transaction(engine) as s:
        observe(s, backend.snapshot())  # squeue may still list them, or not: no matter
    report = slurmopt("report", "summary", "--db", url, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert "state unknown" not in report.stdout and "COMPLETED" in report.stdout
