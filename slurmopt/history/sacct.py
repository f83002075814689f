"""Final job states from Slurm accounting, applied to the history store.

The ``sacct`` command and its parser live in :mod:`slurmopt.slurm.accounting`
(read through the backend: :meth:`slurmopt.slurm.backend.CliBackend.accounting`);
this module writes the records into the database and is what ``slurmopt ingest
sacct`` calls (:func:`ingest_accounting`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from slurmopt.history.orm import JobEvent, JobRow
from slurmopt.slurm.accounting import SacctRecord, parse_sacct

log = logging.getLogger(__name__)


def ingest_accounting(
    engine: Engine,
    *,
    since: int,
    until: int | None = None,
    cluster: str | None = None,
    text: str | None = None,
    backend: Any | None = None,
) -> dict[str, Any]:
    """Read accounting (``text``: saved sacct output instead) and apply it; the counts.

    Returns ``{"accounting": False, ...zeros}`` when the cluster has no accounting.

    Raises:
        SlurmUnavailable, SlurmCommandError: sacct could not be run or failed.
        DatabaseError: the database stayed unavailable (nothing committed).
    """
    from slurmopt.history.db import require_schema, transaction, with_retry

    if text is not None:
        records: list[SacctRecord] | None = parse_sacct(text)
    else:
        if backend is None:
            from slurmopt.slurm.backend import CliBackend

            backend = CliBackend()
        records = backend.accounting(since, until)
    if records is None:
        return {"accounting": False, "updated": 0, "added": 0, "active": 0}
    require_schema(engine)
    if text is None:
        # the window misses jobs cancelled while held or before their --begin time
        # (sacct selects by eligible time): ask for the unfinished ones by id
        seen = {r.job_id for r in records}
        with transaction(engine) as session:
            missing = [
                i for i in unfinished_job_ids(session, since, cluster=cluster) if i not in seen
            ]
        if missing and backend is not None:
            extra = backend.accounting(since, until, job_ids=missing) or []
            # an id names several jobs over a cluster's life (--duplicates): this window's
            records += [r for r in extra if r.submit is None or r.submit >= since]
    got = records
    counts = with_retry(engine, lambda s: apply_sacct(s, got, cluster=cluster))
    return {"accounting": True, "records": len(got), **counts}


def apply_sacct(
    session: Session, records: Iterable[SacctRecord], *, cluster: str | None = None
) -> dict[str, int]:
    """Fill final states (and missing times) from accounting; add jobs never observed.

    ``cluster`` None matches jobs recorded under any cluster name (sacct's
    jobs of one cluster); jobs never observed are added under ``cluster or ""``.
    Idempotent: a job whose final state is already recorded from accounting is
    left alone; an active job (still running per sacct) gets no final state.
    Returns counts ``{"updated", "added", "active"}``.
    """
    counts = {"updated": 0, "added": 0, "active": 0}
    for r in records:
        if r.state.active:
            counts["active"] += 1
            continue
        row = _find(session, cluster, r.job_id, r.submit)
        if row is None:
            row = JobRow(
                cluster=cluster or "",
                job_id=r.job_id,
                submit_time=r.submit or 0,
                name=r.name,
                user=r.user,
                account=r.account,
                allowed_partitions=r.partition or "",
                current_partitions=r.partition or "",
                request={},
                gpus=r.gpus,
                time_limit_s=r.time_limit_s,
                state=r.state.value,
                # never observed in the queue: "seen" when accounting says it ended
                first_seen=r.end or r.submit or 0,
                last_seen=r.end or r.submit or 0,
                left_at=r.end or r.submit or 0,
                managed=False,
            )
            session.add(row)
            session.flush()
            counts["added"] += 1
        elif row.final_state is not None and _has_event(session, row.id, "final"):
            continue
        else:
            counts["updated"] += 1
        row.final_state = r.state.value
        row.state = r.state.value
        row.exit_code = r.exit_code
        if r.ran:  # accounting's real start wins over what was observed
            row.start_time = r.start
        if r.end is not None:
            row.end_time = r.end
        row.partition = row.partition or r.partition
        row.account = row.account or r.account
        row.gpus = row.gpus or r.gpus
        session.add(
            JobEvent(
                job_pk=row.id,
                at=r.end or r.submit or 0,
                kind="final",
                state=r.state.value,
                partition=row.partition,
                detail=f"sacct: {r.state_detail}",
            )
        )
        session.flush()
    return counts


def unfinished_job_ids(
    session: Session, since: int, *, cluster: str | None = None, limit: int = 5000
) -> list[int]:
    """Jobs submitted since ``since`` that have no final state in the history (at most
    ``limit``, newest first): what to ask accounting for by id after the window."""
    q = select(JobRow.job_id).where(JobRow.final_state.is_(None), JobRow.submit_time >= since)
    if cluster is not None:
        q = q.where(JobRow.cluster == cluster)
    q = q.order_by(JobRow.submit_time.desc()).limit(limit)
    return sorted({int(i) for i in session.execute(q).scalars()})


def _find(session: Session, cluster: str | None, job_id: int, submit: int | None) -> JobRow | None:
    q = select(JobRow).where(JobRow.job_id == job_id)
    if cluster is not None:
        q = q.where(JobRow.cluster == cluster)
    if submit is not None:
        q = q.where(JobRow.submit_time.in_(_window(submit)))
    return session.execute(q.order_by(JobRow.submit_time.desc())).scalars().first()


def _window(t: int) -> Sequence[int]:
    # squeue and sacct print the same second; allow a second of clock rounding.
    return (t - 1, t, t + 1)


def _has_event(session: Session, job_pk: int, kind: str) -> bool:
    q = select(JobEvent.id).where(JobEvent.job_pk == job_pk, JobEvent.kind == kind)
    return session.execute(q).first() is not None
