"""The history database as the controller cycle uses it (every query of the controller).

:class:`Store` is what :func:`slurmopt.controller.cycle.run_cycle` reads and
writes: optsub's spool and the snapshot in, the managed jobs and the moves
made so far out, each cycle's run and decisions recorded. Every database
failure (locked by another process, unreachable, schema too old) is raised as
:class:`~slurmopt.history.db.DatabaseError`, never as a driver error; writes
that can wait for a lock retry within a bounded budget
(``busy_timeout_s`` x ``attempts``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from slurmopt.history.db import DatabaseError
from slurmopt.model import Job, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.trust import Claim, Refusal

if TYPE_CHECKING:
    from slurmopt.controller.report import CycleReport

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _guarded(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Driver errors (locked, unreachable) as :class:`DatabaseError`, one line."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"history database unavailable: {_detail(exc)}") from exc

    return wrapper


def _detail(exc: BaseException) -> str:
    """The driver's own message, one line (``database is locked``), without the SQL."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    lines = str(getattr(cause, "orig", None) or cause).splitlines()
    return (lines[0] if lines else type(cause).__name__)[:200]


_NO_HISTORY = frozenset({"request", "default"})
"""Bases of an estimate that is only the job's limit (or the default): no history behind it."""


class Store:
    """What the cycle needs from the history database (see :mod:`slurmopt.history`)."""

    @_guarded
    def __init__(
        self,
        url: str,
        spool: Path,
        *,
        predictions: bool = False,
        learned_speeds: bool = False,
        busy_timeout_s: float = 30.0,
        attempts: int = 3,
    ) -> None:
        """Connect and check the schema.

        Raises:
            DatabaseError: unreachable, or not at this slurmopt's schema revision.
        """
        from slurmopt.history import db

        self.engine = db.make_engine(url, busy_timeout_s=busy_timeout_s, create=False)
        db.require_schema(self.engine)
        self.spool = spool
        self.predictions = predictions
        self.learned_speeds = learned_speeds
        self.attempts = max(1, attempts)

    @_guarded
    def tune(self, snap: Snapshot, cfg: OptimizeConfig) -> tuple[OptimizeConfig, dict[int, float]]:
        """Learned speed factors and predicted runtimes, where enabled in ``[history]``.

        Predictions are learned in reference units (runtime x speed of the GPU
        type a job ran on) and handed to the optimizer as it expects them: a
        pending job's at the slowest speed among the partitions it lists, a
        running job's at the speed of the GPU type it runs on.
        """
        import dataclasses

        from slurmopt.history import db
        from slurmopt.history.learn import (
            learned_gpu_speed,
            limit_ratios,
            predict_runtimes,
            trained_predictor,
        )

        runtimes: dict[int, float] = {}
        with db.transaction(self.engine) as s:
            if self.learned_speeds:
                cfg = dataclasses.replace(cfg, gpu_speed=learned_gpu_speed(s, cfg.gpu_speed))
            if self.predictions:
                learned = limit_ratios(s)
                if learned:  # what history shows replaces the configured prior
                    cfg = dataclasses.replace(cfg, limit_ratio={**cfg.limit_ratio, **learned})
                pred = trained_predictor(s, speeds=cfg.gpu_speed)
                est = predict_runtimes(
                    s, snap.jobs, pred, now=int(snap.taken_at), cluster=snap.cluster_name
                )
                by_id = {j.job_id: j for j in snap.jobs}
                for job_id, e in est.items():
                    if cfg.limit_ratio and e.basis in _NO_HISTORY:
                        continue  # only the limit: the learned share says more for a running job
                    runtimes[job_id] = e.runtime_s / _reference_speed(by_id[job_id], snap, cfg)
        return cfg, runtimes

    @_guarded
    def ingest_and_observe(self, snap: Snapshot) -> None:
        from slurmopt.history import db
        from slurmopt.history.ingest import observe
        from slurmopt.history.spool import ingest_spool

        ingest_spool(self.engine, self.spool, attempts=self.attempts)
        with db.transaction(self.engine) as s:
            observe(s, snap)

    @_guarded
    def managed(self, cluster: str, job_ids: Iterable[int] = ()) -> dict[int, list[Claim]]:
        """job id -> the attested optsub records about it (only for ``job_ids``, if given).

        Records ingested before the trust model (no attested owner) are not claims.
        """
        from sqlalchemy import select

        from slurmopt.history import db
        from slurmopt.history.orm import SpoolRecord

        out: dict[int, list[Claim]] = {}
        ids = sorted(set(job_ids))
        chunks = [ids[i : i + 500] for i in range(0, len(ids), 500)] if ids else [None]
        with db.transaction(self.engine) as s:
            for chunk in chunks:
                q = select(
                    SpoolRecord.job_id, SpoolRecord.owner, SpoolRecord.at, SpoolRecord.data
                ).where(SpoolRecord.job_id.is_not(None), SpoolRecord.owner.is_not(None))
                if chunk is not None:
                    q = q.where(SpoolRecord.job_id.in_(chunk))
                for job_id, owner, at, data in s.execute(q):
                    c = claim_from_record(int(job_id), str(owner), int(at), data)
                    if c is not None:
                        out.setdefault(c.job_id, []).append(c)
        return out

    @_guarded
    def record_refusals(self, refusals: list[Refusal], at: int) -> None:
        """Add the controller's refusals to the audit trail (each distinct one once)."""
        from sqlalchemy import select

        from slurmopt.history import db
        from slurmopt.history.orm import TrustRefusal

        with db.transaction(self.engine) as s:
            for r in refusals:
                seen = s.execute(
                    select(TrustRefusal.id).where(
                        TrustRefusal.component == r.component,
                        TrustRefusal.what == r.what[:256],
                        TrustRefusal.why == r.why[:256],
                    )
                ).first()
                if seen is None:
                    r.log()
                    s.add(
                        TrustRefusal(
                            at=at,
                            component=r.component,
                            who=r.who[:64],
                            what=r.what[:256],
                            why=r.why[:256],
                        )
                    )

    @_guarded
    def moves_so_far(self, cluster: str) -> dict[int, int]:
        from sqlalchemy import func, select

        from slurmopt.history import db
        from slurmopt.history.orm import Decision

        with db.transaction(self.engine) as s:
            q = (
                select(Decision.job_id, func.count())
                .where(
                    Decision.source == "controller",
                    Decision.applied.is_(True),
                    Decision.cluster == cluster,
                )
                .group_by(Decision.job_id)
            )
            return {int(j): int(n) for j, n in s.execute(q)}

    def record(self, report: CycleReport, cluster: str, *, replace: bool = False) -> None:
        """Record the run and every decision in one transaction, retried while locked.

        ``replace``: decisions of the same cycle already recorded are replaced
        (a reconciled cycle from the journal), else kept (a replay is a no-op).

        Raises:
            DatabaseError: still locked or unreachable after the retry budget
                (nothing of this cycle was committed).
        """
        from slurmopt.history import db

        def work(s: Any) -> None:
            self._record(s, report, cluster, replace=replace)

        try:
            db.with_retry(self.engine, work, attempts=self.attempts, backoff_s=0.2)
        except (SQLAlchemyError, DatabaseError) as exc:
            raise DatabaseError(
                f"history database unavailable after {self.attempts} tries: {_detail(exc)}"
            ) from exc

    def _record(self, s: Any, report: CycleReport, cluster: str, *, replace: bool) -> None:
        from sqlalchemy import delete

        from slurmopt.history.ingest import record_decision, record_run
        from slurmopt.history.orm import Decision

        started = int(report.started_at)
        run_id = record_run(
            s,
            started_at=started,
            mode=report.mode,
            cluster=cluster,
            finished_at=int(report.started_at + report.wall_s),
            wall_s=report.wall_s,
            jobs_seen=report.jobs_seen,
            moves_applied=report.applied,
            error=report.error,
        )
        for j in report.jobs:
            if replace:
                s.execute(
                    delete(Decision).where(
                        Decision.cluster == cluster,
                        Decision.job_id == j.job_id,
                        Decision.decided_at == started,
                        Decision.source == "controller",
                    )
                )
            record_decision(
                s,
                job_id=j.job_id,
                decided_at=started,
                run_id=run_id,
                cluster=cluster,
                source="controller",
                mode=report.mode,
                solver=report.solver,
                seed=report.seed,
                from_partitions=",".join(j.from_partitions),
                to_partition=j.to_partition,
                gpu_type=j.gpu_type,
                predicted_start=j.target_start,
                predicted_end=j.target_end,
                predicted_runtime=j.target_end - j.target_start,
                gain_s=j.gain_s,
                applied=j.outcome == "applied",
                outcome=j.outcome,
                reason=j.reason,
                managed_by=j.managed_by or None,
                candidates=[
                    {
                        "partition": ",".join(j.from_partitions),
                        "start": j.current_start,
                        "end": j.current_end,
                    },
                    {"partition": j.to_partition, "start": j.target_start, "end": j.target_end},
                ],
            )


def _reference_speed(job: Job, snap: Snapshot, cfg: OptimizeConfig) -> float:
    """The speed a job's wall runtime is measured at (see :meth:`Store.tune`)."""
    if not job.request.wants_gpus:
        return 1.0
    if job.running and job.gpus_alloc:
        types = [t for t, n in job.gpus_alloc.items() if n > 0]
    else:
        gpu_nodes = {n.name: n for n in snap.nodes if n.gpu_total}
        types = [
            t
            for p in snap.partitions
            if p.name in job.partitions
            for name in p.nodes
            if name in gpu_nodes
            for t, c in gpu_nodes[name].gpus.items()
            if c > 0 and (job.request.gpu_type in (None, t))
        ]
    return min((cfg.speed_of_gpu(t) for t in types), default=1.0)


def claim_from_record(job_id: int, owner: str, at: int, data: Any) -> Claim | None:
    """An optsub record (as stored by ingestion) as a :class:`Claim`; None if it says nothing."""
    if not isinstance(data, dict):
        return None
    inner = data.get("data") if isinstance(data.get("data"), dict) else data
    assert isinstance(inner, dict)
    allowed = inner.get("allowed") or inner.get("allowed_partitions") or ()
    if isinstance(allowed, str):
        allowed = allowed.split(",")
    if not isinstance(allowed, list | tuple):
        return None
    return Claim(
        job_id=job_id,
        owner=owner,
        allowed=tuple(str(p) for p in allowed if p),
        pinned=inner.get("pinned") is not False,
        at=at,
        cluster=str(data.get("cluster") or inner.get("cluster") or ""),
    )
