"""Record a controller snapshot and the job state transitions it shows.

What is recorded from a :class:`~slurmopt.model.Snapshot` (:func:`observe`):

* one ``snapshots`` row, a ``partition_samples`` row per partition and a
  ``node_samples`` row per node;
* per job: first sighting (``submit`` event), start (start time, the partition
  it started in, the GPU type it got), partition changes while pending, a
  finished state when squeue still shows one (Slurm's own word, kept as
  ``final_state`` with the event detail ``squeue``);
* a job that was in the queue and is gone from this snapshot is marked
  ``left`` (``left_at``; a job that had started gets ``end_time`` = the first
  snapshot that missed it, precise to one cycle). Its final state stays
  unknown until :mod:`slurmopt.history.sacct` fills it from accounting.

Writes are batched (a few statements per table, whatever the queue length)
and keyed, so observing the same snapshot twice changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slurmopt.history.orm import (
    JobEvent,
    JobRow,
    NodeSample,
    PartitionSample,
    SnapshotRow,
    SpoolRecord,
)
from slurmopt.history.upsert import insert_ignore, insert_ignore_bulk, table_of
from slurmopt.model import Job, JobState, Snapshot

log = logging.getLogger(__name__)

IN_CHUNK = 500
"""Ids per ``IN (...)`` list."""


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


def _chunked(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), IN_CHUNK):
        yield ids[i : i + IN_CHUNK]


def _record_snapshot(session: Session, snap: Snapshot, cluster: str, run_id: int | None) -> bool:
    new = insert_ignore(
        session,
        table_of(SnapshotRow),
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
    if not new:
        return False
    sid = session.execute(
        select(SnapshotRow.id).where(
            SnapshotRow.cluster == cluster, SnapshotRow.taken_at == snap.taken_at
        )
    ).scalar_one()
    nodes = {n.name: n for n in snap.nodes}
    running: dict[str, int] = {}
    pending: dict[str, int] = {}
    for j in snap.jobs:
        target = running if j.running else pending if j.pending else None
        if target is not None:
            for name in j.partitions:
                target[name] = target.get(name, 0) + 1
    parts = []
    for p in snap.partitions:
        pn = [nodes[name] for name in p.nodes if name in nodes]
        parts.append(
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
                "jobs_running": running.get(p.name, 0),
                "jobs_pending": pending.get(p.name, 0),
            }
        )
    insert_ignore_bulk(session, table_of(PartitionSample), parts, ["snapshot_id", "partition"])
    node_rows = [
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
        }
        for n in snap.nodes
    ]
    insert_ignore_bulk(session, table_of(NodeSample), node_rows, ["snapshot_id", "node"])
    return True


def _job_values(job: Job, cluster: str, at: int) -> dict[str, Any]:
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
        "allowed_partitions": ",".join(job.plugin_allowed or job.partitions),
        "current_partitions": ",".join(job.partitions),
        "request": dataclasses.asdict(job.request),
        "gpus": job.request.gpus_total(),
        "gpu_type": job.request.gpu_type,
        "time_limit_s": job.request.time_limit_s,
        "eligible_time": job.eligible_time,
        "state": JobState.PENDING.value if job.pending else job.state.value,
        "first_seen": at,
        "last_seen": at,
        "slurm_estimate_start": job.start_time if job.pending and job.start_time else None,
        "reason": (job.reason or None) and job.reason[:128],
        "managed": bool(job.plugin_allowed),
    }


def _event(
    job_pk: int,
    at: int,
    kind: str,
    *,
    state: str | None = None,
    partition: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "job_pk": job_pk,
        "at": at,
        "kind": kind,
        "state": state,
        "partition": partition,
        "detail": detail,
    }


def _load_rows(session: Session, cluster: str, jobs: list[Job]) -> dict[tuple[int, int], JobRow]:
    out: dict[tuple[int, int], JobRow] = {}
    for ids in _chunked(sorted({j.job_id for j in jobs})):
        q = select(JobRow).where(JobRow.cluster == cluster, JobRow.job_id.in_(ids))
        for row in session.execute(q).scalars():
            out[(row.job_id, row.submit_time)] = row
    return out


def _mark_managed(session: Session, rows: list[JobRow]) -> None:
    """New jobs that optsub submitted (its spool record came first) are managed.

    Only a record whose spool file was owned by the job's owner counts (docs/security.md).
    """
    by_id = {r.job_id: r for r in rows}
    for ids in _chunked(sorted(by_id)):
        q = select(SpoolRecord.job_id, SpoolRecord.owner).where(SpoolRecord.job_id.in_(ids))
        for jid, owner in session.execute(q).all():
            if jid is not None and jid in by_id and owner == by_id[jid].user:
                by_id[jid].managed = True


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
    events: list[dict[str, Any]] = []
    with session.no_autoflush:
        stats.snapshot_new = _record_snapshot(session, snap, cluster, run_id)
        jobs = list({(j.job_id, j.submit_time or 0): j for j in snap.jobs}.values())
        rows = _load_rows(session, cluster, jobs)
        missing = [j for j in jobs if (j.job_id, j.submit_time or 0) not in rows]
        keys = ["cluster", "job_id", "submit_time"]
        insert_ignore_bulk(
            session, table_of(JobRow), [_job_values(j, cluster, at) for j in missing], keys
        )
        if missing:
            rows.update(_load_rows(session, cluster, missing))
        # inserted now (a row another writer inserted for the same snapshot counts too)
        new_rows = [
            r for j in missing if (r := rows[(j.job_id, j.submit_time or 0)]).first_seen == at
        ]
        stats.jobs_new = len(new_rows)
        _mark_managed(session, new_rows)
        new_rows_set = set(new_rows)
        seen: set[int] = set()
        for job in jobs:
            row = rows[(job.job_id, job.submit_time or 0)]
            seen.add(row.id)
            if row in new_rows_set:
                events.append(
                    _event(
                        row.id,
                        job.submit_time or at,
                        "submit",
                        state=job.state.value,
                        partition=row.allowed_partitions,
                    )
                )
            _transitions(row, job, at, stats, events)
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
            events.append(
                _event(
                    row.id,
                    at,
                    "left",
                    state=row.state,
                    detail="no longer in the queue; final state from accounting only",
                )
            )
            stats.left += 1
    session.flush()
    insert_ignore_bulk(session, table_of(JobEvent), events, ["job_pk", "at", "kind"])
    log.debug("observed snapshot %s at %d: %s", cluster, at, stats)
    return stats


def _transitions(
    row: JobRow, job: Job, at: int, stats: ObserveStats, events: list[dict[str, Any]]
) -> None:
    if at < row.last_seen:
        return  # an older snapshot arriving late: keep the newer state
    row.last_seen = at
    parts = ",".join(job.partitions)
    if job.pending and parts != row.current_partitions:
        events.append(
            _event(
                row.id,
                at,
                "partition",
                state=job.state.value,
                partition=parts,
                detail=f"from {row.current_partitions}",
            )
        )
        row.current_partitions = parts
        stats.partition_changes += 1
    if job.pending and job.start_time and row.slurm_estimate_start is None:
        row.slurm_estimate_start = job.start_time
    if not job.pending and row.start_time is None and job.start_time:
        row.start_time = job.start_time
        row.partition = job.partitions[0] if job.partitions else None
        row.current_partitions = parts
        typed = [t for t, n in job.gpus_alloc.items() if n > 0]
        row.gpu_type_run = typed[0] if typed else None
        events.append(
            _event(row.id, job.start_time, "start", state=job.state.value, partition=row.partition)
        )
        stats.started += 1
    if not job.state.active and row.final_state is None:
        row.final_state = job.state.value
        if job.end_time:
            row.end_time = job.end_time
        events.append(
            _event(
                row.id,
                job.end_time or at,
                "end",
                state=job.state.value,
                partition=row.partition,
                detail="squeue",
            )
        )
        stats.finished += 1
    if row.state != job.state.value:
        row.state = job.state.value
    if job.pending:
        reason = (job.reason or None) and job.reason[:128]
        if row.reason != reason:
            row.reason = reason
