"""Final states from accounting fill what the controller could only see leave the queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from slurmopt.history.db import transaction
from slurmopt.history.ingest import observe
from slurmopt.history.orm import JobEvent, JobRow
from slurmopt.history.sacct import apply_sacct
from slurmopt.model import JobState
from slurmopt.slurm.accounting import parse_sacct

from .conftest import job, snap


def _t(s: str) -> int:
    return int(datetime.fromisoformat(s).timestamp())


def test_apply_fills_final_states_idempotently(engine: Engine) -> None:
    submit = _t("2026-11-20T10:00:00")
    start = _t("2026-11-20T10:05:00")
    with transaction(engine) as s:
        observe(
            s,
            snap(
                start + 10,
                job(101, submit=submit, start=start, state=JobState.RUNNING, partitions=("a100",)),
            ),
        )
        observe(s, snap(start + 4000))
    text = (
        "101|101|alice|proj|a100|COMPLETED|2026-11-20T10:00:00|2026-11-20T10:05:00|"
        "2026-11-20T11:05:00|3600|120|0:0|gres/gpu=1|train\n"
        "555|555|dave|proj|cpu|FAILED|2026-11-20T08:00:00|2026-11-20T08:00:05|"
        "2026-11-20T08:10:05|600|60|1:0||other\n"
        "556|556|dave|proj|cpu|PENDING|2026-11-20T08:00:00|Unknown|Unknown|0|60|0:0||q\n"
    )
    recs = parse_sacct(text)
    with transaction(engine) as s:
        first = apply_sacct(s, recs)
    with transaction(engine) as s:
        second = apply_sacct(s, recs)
    assert first == {"updated": 1, "added": 1, "active": 1}
    assert second == {"updated": 0, "added": 0, "active": 1}
    with transaction(engine) as s:
        j = s.execute(select(JobRow).where(JobRow.job_id == 101)).scalar_one()
        added = s.execute(select(JobRow).where(JobRow.job_id == 555)).scalar_one()
        finals = s.execute(select(JobEvent).where(JobEvent.kind == "final")).scalars().all()
    assert (j.final_state, j.end_time, j.exit_code) == (
        "COMPLETED",
        _t("2026-11-20T11:05:00"),
        "0:0",
    )
    assert j.left_at == start + 4000  # what the controller saw is kept
    assert (added.final_state, added.user, added.time_limit_s) == ("FAILED", "dave", 3600)
    assert added.left_at == added.end_time == _t("2026-11-20T08:10:05")  # prunable by its end
    assert len(finals) == 2
