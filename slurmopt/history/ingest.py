"""Record what the controller observes: snapshots, job state transitions, runs, decisions.

Every write is keyed by a natural unique key and goes through
:func:`insert_ignore`, so ingesting the same observation twice changes nothing
and two writers racing on the same key cannot create a duplicate.

What is recorded from a :class:`~slurmopt.model.Snapshot` (:func:`observe`):

* one ``snapshots`` row, a ``partition_samples`` row per partition and a
  ``node_samples`` row per node;
* per job: first sighting (``submit`` event), start (start time, the partition
  it started in, the GPU type it got), partition changes while pending, a
  finished state when squeue still shows one (Slurm's own word, kept as
  ``final_state`` with the event detail ``squeue``);
* a job that was in the previous snapshot and is gone from this one is marked
  ``left`` (``left_at``; a job that had started gets ``end_time`` = the first
  snapshot that missed it, precise to one cycle). Its final state stays
  unknown until :mod:`slurmopt.history.sacct` fills it from accounting.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from slurmopt.history.orm import (
    Alert,
    ControllerRun,
    Decision,
    JobEvent,
    JobRow,
    NodeSample,
    PartitionSample,
    Prediction,
    SnapshotRow,
    SpoolRecord,
    TelemetrySample,
)
from slurmopt.model import Job, JobState, Snapshot

log = logging.getLogger(__name__)


def insert_ignore(
    session: Session, table: Table, values: Mapping[str, Any], keys: Sequence[str]
) -> bool:
    """Insert a row unless one with the same unique ``keys`` exists. True if inserted.

    Uses ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL (safe
    against concurrent writers); other dialects check first.
    """
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as d_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as d_insert  # type: ignore[assignment]
        stmt = (
            d_insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(keys))
            .returning(*table.primary_key.columns)
        )
        # rowcount is -1 with RETURNING on psycopg: count the returned rows instead.
        return session.execute(stmt).first() is not None
    cond = [table.c[k] == values[k] for k in keys]
    if session.execute(select(table.c[keys[0]]).where(*cond)).first() is not None:
        return False
    session.execute(table.insert().values(**values))
    return True


@dataclass
class ObserveStats:
    """What one :func:`observe` call recorded."""

    snapshot_new: bool = False
    jobs_new: int = 0
    started: int = 0
    finished: int = 0
    left: int = 0
    partition_changes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _t(tbl: Any) -> Table:
    t = tbl.__table__
    assert isinstance(t, Table)
    return t


def _record_snapshot(
    session: Session, snap: Snapshot, cluster: str, run_id: int | None
) -> tuple[int, bool]:
    new = insert_ignore(
        session,
        _t(SnapshotRow),
        {
            "cluster": cluster,
            "taken_at": snap.taken_at,
            "run_id": run_id,
            "slurm_version": snap.slurm_version,
            "source": snap.source,
            "jobs_running": len(snap.running),
            "jobs_pending": len(snap.pending),
        },
        ["cluster", "taken_at"],
    )
    sid = session.execute(
        select(SnapshotRow.id).where(
            SnapshotRow.cluster == cluster, SnapshotRow.taken_at == snap.taken_at
        )
    ).scalar_one()
    if not new:
        return sid, False
    nodes = {n.name: n for n in snap.nodes}
    for p in snap.partitions:
        pn = [nodes[name] for name in p.nodes if name in nodes]
        insert_ignore(
            session,
            _t(PartitionSample),
            {
                "snapshot_id": sid,
                "taken_at": snap.taken_at,
                "partition": p.name,
                "state": p.state,
                "nodes_total": len(p.nodes),
                "nodes_available": sum(1 for n in pn if n.available),
                "cpus_total": sum(n.cpus for n in pn),
                "cpus_alloc": sum(n.cpus_alloc for n in pn),
                "gpus_total": sum(n.gpu_total for n in pn),
                "gpus_used": sum(sum(n.gpus_used.values()) for n in pn),
                "jobs_running": sum(1 for j in snap.running if p.name in j.partitions),
                "jobs_pending": sum(1 for j in snap.pending if p.name in j.partitions),
            },
            ["snapshot_id", "partition"],
        )
    for n in snap.nodes:
        insert_ignore(
            session,
            _t(NodeSample),
            {
                "snapshot_id": sid,
                "taken_at": snap.taken_at,
                "node": n.name,
                "state": n.state.value,
                "flags": ",".join(sorted(n.flags)),
                "cpus": n.cpus,
                "cpus_alloc": n.cpus_alloc,
                "memory_mb": n.memory_mb,
                "memory_alloc_mb": n.memory_alloc_mb,
                "gpus": dict(n.gpus),
                "gpus_used": dict(n.gpus_used),
            },
            ["snapshot_id", "node"],
        )
    return sid, True


def _event(
    session: Session,
    job_pk: int,
    at: int,
    kind: str,
    *,
    state: str | None = None,
    partition: str | None = None,
    detail: str | None = None,
) -> bool:
    return insert_ignore(
        session,
        _t(JobEvent),
        {
            "job_pk": job_pk,
            "at": at,
            "kind": kind,
            "state": state,
            "partition": partition,
            "detail": detail,
        },
        ["job_pk", "at", "kind"],
    )


def _job_values(job: Job, cluster: str, at: int) -> dict[str, Any]:
    req = dataclasses.asdict(job.request)
    return {
        "cluster": cluster,
        "job_id": job.job_id,
        "submit_time": job.submit_time or 0,
        "array_job_id": job.array_job_id,
        "array_task_id": job.array_task_id,
        "name": job.name,
        "user": job.user,
        "account": job.account,
        "qos": job.qos,
        "allowed_partitions": ",".join(job.partitions),
        "current_partitions": ",".join(job.partitions),
        "request": req,
        "gpus": job.request.gpus_total(),
        "gpu_type": job.request.gpu_type,
        "time_limit_s": job.request.time_limit_s,
        "eligible_time": job.eligible_time,
        "state": JobState.PENDING.value if job.pending else job.state.value,
        "first_seen": at,
        "last_seen": at,
        "slurm_estimate_start": job.start_time if job.pending and job.start_time else None,
        "reason": (job.reason or None) and job.reason[:128],
    }


def _mark_managed(session: Session, job_id: int) -> None:
    """A job that optsub submitted (its spool record came first) is managed."""
    q = select(SpoolRecord.id).where(SpoolRecord.job_id == job_id).limit(1)
    if session.execute(q).first() is not None:
        session.execute(update(JobRow).where(JobRow.job_id == job_id).values(managed=True))


def _run_gpu_type(job: Job) -> str | None:
    typed = [t for t, n in job.gpus_alloc.items() if n > 0]
    return typed[0] if typed else None


def observe(
    session: Session, snap: Snapshot, *, cluster: str | None = None, run_id: int | None = None
) -> ObserveStats:
    """Record one snapshot and the job transitions it shows (idempotent).

    Args:
        session: an open session; the caller commits.
        snap: a complete snapshot (a partial read must never be observed: jobs
            missing from it would be marked as having left the queue).
        cluster: cluster name (default: the snapshot's).
        run_id: the controller run that read it.
    """
    cluster = snap.cluster_name if cluster is None else cluster
    at = snap.taken_at
    stats = ObserveStats()
    _, stats.snapshot_new = _record_snapshot(session, snap, cluster, run_id)
    seen: set[int] = set()
    for job in snap.jobs:
        vals = _job_values(job, cluster, at)
        if insert_ignore(session, _t(JobRow), vals, ["cluster", "job_id", "submit_time"]):
            stats.jobs_new += 1
            _mark_managed(session, job.job_id)
        row = session.execute(
            select(JobRow).where(
                JobRow.cluster == cluster,
                JobRow.job_id == job.job_id,
                JobRow.submit_time == vals["submit_time"],
            )
        ).scalar_one()
        seen.add(row.id)
        if row.first_seen == at:
            _event(
                session,
                row.id,
                job.submit_time or at,
                "submit",
                state=job.state.value,
                partition=vals["allowed_partitions"],
            )
        _transitions(session, row, job, at, stats)
    # Jobs that were in the queue and are not any more.
    gone = session.execute(
        select(JobRow).where(
            JobRow.cluster == cluster, JobRow.left_at.is_(None), JobRow.last_seen < at
        )
    ).scalars()
    for row in gone:
        if row.id in seen:
            continue
        row.left_at = at
        if row.start_time is not None and row.end_time is None:
            row.end_time = at
        _event(
            session,
            row.id,
            at,
            "left",
            state=row.state,
            detail="no longer in the queue; final state from accounting only",
        )
        stats.left += 1
    session.flush()
    log.debug("observed snapshot %s at %d: %s", cluster, at, stats)
    return stats


def _transitions(session: Session, row: JobRow, job: Job, at: int, stats: ObserveStats) -> None:
    if at < row.last_seen:
        return  # an older snapshot arriving late: keep the newer state
    row.last_seen = at
    parts = ",".join(job.partitions)
    if job.pending and parts != row.current_partitions:
        _event(
            session,
            row.id,
            at,
            "partition",
            state=job.state.value,
            partition=parts,
            detail=f"from {row.current_partitions}",
        )
        row.current_partitions = parts
        stats.partition_changes += 1
    if job.pending and job.start_time and row.slurm_estimate_start is None:
        row.slurm_estimate_start = job.start_time
    if not job.pending and row.start_time is None and job.start_time:
        row.start_time = job.start_time
        row.partition = job.partitions[0] if job.partitions else None
        row.current_partitions = parts
        row.gpu_type_run = _run_gpu_type(job)
        _event(
            session, row.id, job.start_time, "start", state=job.state.value, partition=row.partition
        )
        stats.started += 1
    if not job.state.active and row.final_state is None:
        row.final_state = job.state.value
        if job.end_time:
            row.end_time = job.end_time
        _event(
            session,
            row.id,
            job.end_time or at,
            "end",
            state=job.state.value,
            partition=row.partition,
            detail="squeue",
        )
        stats.finished += 1
    row.state = job.state.value
    if job.pending:
        row.reason = (job.reason or None) and job.reason[:128]


# -- controller runs, decisions, predictions --------------------------------------


def record_run(
    session: Session,
    *,
    started_at: int,
    mode: str,
    cluster: str = "",
    host: str | None = None,
    **fields: Any,
) -> int:
    """Record (or update) one controller cycle; return its id.

    ``fields`` are :class:`~slurmopt.history.orm.ControllerRun` columns
    (``finished_at``, ``jobs_seen``, ``moves_applied``, ``wall_s``, ``error``...).
    """
    host = socket.gethostname() if host is None else host
    key = {"cluster": cluster, "host": host, "started_at": started_at}
    insert_ignore(session, _t(ControllerRun), {**key, "mode": mode, **fields}, list(key))
    rid = session.execute(
        select(ControllerRun.id).where(*[getattr(ControllerRun, k) == v for k, v in key.items()])
    ).scalar_one()
    if fields:
        session.execute(
            update(ControllerRun).where(ControllerRun.id == rid).values(mode=mode, **fields)
        )
    return int(rid)


def record_decision(session: Session, *, job_id: int, decided_at: int, **fields: Any) -> bool:
    """Record a placement decision (a :class:`~slurmopt.history.orm.Decision`'s columns).

    Returns False if the same decision (cluster, job, time, source) was already recorded.
    """
    vals: dict[str, Any] = {"cluster": "", "source": "controller", **fields}
    vals.update(job_id=job_id, decided_at=decided_at)
    return insert_ignore(session, _t(Decision), vals, ["cluster", "job_id", "decided_at", "source"])


def record_prediction(
    session: Session, *, job_id: int, made_at: int, predictor: str, runtime_s: float, **fields: Any
) -> bool:
    """Record a runtime prediction (False if already recorded)."""
    vals: dict[str, Any] = {"cluster": "", **fields}
    vals.update(job_id=job_id, made_at=made_at, predictor=predictor, runtime_s=runtime_s)
    return insert_ignore(
        session, _t(Prediction), vals, ["cluster", "job_id", "made_at", "predictor"]
    )


def record_telemetry(
    session: Session, *, at: int, node: str, gpu_index: int = -1, **fields: Any
) -> bool:
    """Record one telemetry sample (``util_pct``, ``mem_used_mb``, ``power_w``, ``job_id``...).

    Returns False if a sample for the same node, GPU and time exists.
    """
    vals: dict[str, Any] = {**fields, "at": at, "node": node, "gpu_index": gpu_index}
    return insert_ignore(session, _t(TelemetrySample), vals, ["node", "gpu_index", "at"])


def record_alert(
    session: Session, *, at: int, rule: str, severity: str, node: str = "", **fields: Any
) -> bool:
    """Record one alert (False if the same rule fired for the same node at the same time)."""
    vals: dict[str, Any] = {
        "message": "",
        **fields,
        "at": at,
        "rule": rule,
        "severity": severity,
        "node": node,
    }
    return insert_ignore(session, _t(Alert), vals, ["rule", "node", "at"])
