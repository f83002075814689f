"""Job state transitions recorded from snapshots; idempotence; runs, decisions, predictions."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from slurmopt.history.db import transaction
from slurmopt.history.ingest import observe, record_decision, record_prediction, record_run
from slurmopt.history.orm import (
    Decision,
    JobEvent,
    JobRow,
    NodeSample,
    PartitionSample,
    Prediction,
    SnapshotRow,
)
from slurmopt.model import JobState

from .conftest import job, snap


def _count(engine: Engine, model: type) -> int:
    with transaction(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _job(engine: Engine, job_id: int) -> JobRow:
    with transaction(engine) as s:
        return s.execute(select(JobRow).where(JobRow.job_id == job_id)).scalar_one()


def _events(engine: Engine, job_id: int) -> list[tuple[str, int, str | None]]:
    with transaction(engine) as s:
        q = (
            select(JobEvent.kind, JobEvent.at, JobEvent.partition)
            .join(JobRow, JobRow.id == JobEvent.job_pk)
            .where(JobRow.job_id == job_id)
            .order_by(JobEvent.at, JobEvent.id)
        )
        return [tuple(r) for r in s.execute(q)]  # type: ignore[misc]


LIFE = [
    snap(1100, job(1), job(2, partitions=("a100",))),
    snap(
        1200,
        job(1, partitions=("h100",)),
        job(2, JobState.RUNNING, ("a100",), start=1150, end=4750, gpus_alloc={"a100": 2}),
    ),
    snap(1300, job(1, JobState.RUNNING, ("h100",), start=1250, gpus_alloc={"h100": 2})),
    snap(1400),
]


def test_life_of_two_jobs(engine: Engine) -> None:
    stats = []
    for s in LIFE:
        with transaction(engine) as session:
            stats.append(observe(session, s))
    assert [x.jobs_new for x in stats] == [2, 0, 0, 0]
    assert [x.started for x in stats] == [0, 1, 1, 0]
    assert [x.left for x in stats] == [0, 0, 1, 1]
    assert stats[1].partition_changes == 1

    j1 = _job(engine, 1)
    assert j1.allowed_partitions == "a100,h100"
    assert j1.partition == "h100"
    assert j1.gpu_type_run == "h100"
    assert (j1.start_time, j1.end_time, j1.left_at) == (1250, 1400, 1400)
    assert j1.final_state is None  # left the queue: never guessed
    assert [e[0] for e in _events(engine, 1)] == ["submit", "partition", "start", "left"]

    j2 = _job(engine, 2)
    assert (j2.start_time, j2.partition, j2.left_at, j2.end_time) == (1150, "a100", 1300, 1300)
    assert j2.final_state is None
    assert _count(engine, SnapshotRow) == 4
    assert _count(engine, PartitionSample) == 12
    assert _count(engine, NodeSample) == 12


def test_observing_twice_changes_nothing(engine: Engine) -> None:
    for s in LIFE:
        with transaction(engine) as session:
            observe(session, s)
    counts = [_count(engine, m) for m in (JobRow, JobEvent, SnapshotRow, NodeSample)]
    for s in LIFE:
        with transaction(engine) as session:
            again = observe(session, s)
        assert (again.snapshot_new, again.jobs_new, again.started, again.left) == (False, 0, 0, 0)
    assert [_count(engine, m) for m in (JobRow, JobEvent, SnapshotRow, NodeSample)] == counts


def test_finished_state_shown_by_squeue_is_kept(engine: Engine) -> None:
    with transaction(engine) as session:
        observe(session, snap(1100, job(5, JobState.RUNNING, ("a100",), start=1050)))
        observe(session, snap(1200, job(5, JobState.FAILED, ("a100",), start=1050, end=1190)))
    j = _job(engine, 5)
    assert (j.final_state, j.end_time) == ("FAILED", 1190)
    assert _events(engine, 5)[-1][0] == "end"


def test_partition_samples_summarize_the_snapshot(engine: Engine) -> None:
    s = snap(1200, job(1), job(2, JobState.RUNNING, ("a100",), start=1150))
    with transaction(engine) as session:
        observe(session, s)
        rows = {p.partition: p for p in session.execute(select(PartitionSample)).scalars()}
    assert rows["a100"].gpus_total == 4 and rows["a100"].gpus_used == 2
    assert rows["a100"].jobs_running == 1 and rows["a100"].jobs_pending == 1
    assert rows["h100"].jobs_pending == 1 and rows["h100"].jobs_running == 0
    assert rows["cpu"].nodes_available == 0  # drained


def test_recycled_job_id_is_a_new_job(engine: Engine) -> None:
    with transaction(engine) as session:
        observe(session, snap(1100, job(9, submit=1000)))
        observe(session, snap(1200))
        observe(session, snap(9000, job(9, submit=8900)))
        rows = session.execute(select(JobRow).where(JobRow.job_id == 9)).scalars().all()
    assert sorted(r.submit_time for r in rows) == [1000, 8900]


def test_runs_decisions_predictions_are_idempotent(engine: Engine) -> None:
    for _ in range(2):
        with transaction(engine) as session:
            rid = record_run(session, started_at=500, mode="observe", host="h", jobs_seen=3)
            record_run(session, started_at=500, mode="observe", host="h", wall_s=1.5)
            record_decision(
                session,
                job_id=1,
                decided_at=510,
                run_id=rid,
                to_partition="h100",
                predicted_start=600.0,
                gain_s=120.0,
                outcome="observed",
            )
            record_prediction(session, job_id=1, made_at=510, predictor="p", runtime_s=60.0)
    assert _count(engine, Decision) == 1
    assert _count(engine, Prediction) == 1
    with transaction(engine) as session:
        from slurmopt.history.orm import ControllerRun

        run = session.execute(select(ControllerRun)).scalar_one()
    assert (run.jobs_seen, run.wall_s) == (3, 1.5)


def test_observe_is_batched_whatever_the_queue_length(engine: Engine) -> None:
    """Statements per snapshot stay bounded: no per-job round trip (2,000 jobs here)."""
    from sqlalchemy import event

    count = [0]

    def on_exec(*_args: object) -> None:
        count[0] += 1

    jobs = [job(i) for i in range(2000)]
    event.listen(engine, "before_cursor_execute", on_exec)
    try:
        for at, js in ((1000, jobs), (1060, jobs[:1500])):
            count[0] = 0
            with transaction(engine) as session:
                st = observe(session, snap(at, *js))
            assert count[0] < 40, count[0]
    finally:
        event.remove(engine, "before_cursor_execute", on_exec)
    assert st.left == 500
    assert _count(engine, JobRow) == 2000
