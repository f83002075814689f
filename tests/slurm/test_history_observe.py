"""Observing real snapshots: a job's start, partition and end recorded from the testbed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from slurmopt.history import db
from slurmopt.history.ingest import observe
from slurmopt.history.orm import JobEvent, JobRow
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker, wait_for


def test_job_life_recorded_from_real_snapshots(jobs: JobTracker, tmp_path: Path) -> None:
    backend = CliBackend(timeout=30)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    db.upgrade(engine)

    def see() -> None:
        snap = backend.snapshot()
        with db.transaction(engine) as s:
            observe(s, snap)

    job_id = jobs.track(
        backend.submit(
            ["-H", "-J", "slurmopt-history", "-t", "2", "-c", "1", "--mem=100", "--wrap", "sleep 3"]
        )
    )
    see()
    backend.release(job_id)

    def state() -> str | None:
        j = backend.job(job_id)
        return None if j is None else j.state.value

    wait_for(lambda: state() in ("RUNNING", "COMPLETING", "COMPLETED", None), timeout=60)
    see()
    wait_for(lambda: state() not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"), timeout=90)
    see()
    with db.transaction(engine) as s:
        row = s.execute(select(JobRow).where(JobRow.job_id == job_id)).scalar_one()
        kinds = [
            e.kind
            for e in s.execute(
                select(JobEvent)
                .where(JobEvent.job_pk == row.id)
                .order_by(JobEvent.at, JobEvent.id)  # submit and start may share a second
            ).scalars()
        ]
    assert row.name == "slurmopt-history" and row.submit_time > 0
    assert row.start_time is not None and row.partition
    assert kinds[0] == "submit" and "start" in kinds
    # finished: either squeue still showed its final state, or it left the queue unguessed
    assert (row.final_state == "COMPLETED" and "end" in kinds) or (
        row.left_at is not None and row.final_state is None and "left" in kinds
    )
