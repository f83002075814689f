"""Record what the controller and the probes report: snapshots (via
:mod:`slurmopt.history.observe`), controller runs, decisions, predictions,
telemetry samples and alerts.

Every write is keyed by a natural unique key and goes through
:func:`~slurmopt.history.upsert.insert_ignore`, so recording the same thing
twice changes nothing and two writers racing on the same key cannot create a
duplicate. ``observe`` and ``ObserveStats`` are re-exported here.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from slurmopt.history.observe import ObserveStats, observe
from slurmopt.history.orm import Alert, ControllerRun, Decision, Prediction, TelemetrySample
from slurmopt.history.upsert import insert_ignore, insert_ignore_many, table_of

__all__ = [
    "ObserveStats",
    "insert_ignore",
    "insert_ignore_many",
    "observe",
    "record_alert",
    "record_decision",
    "record_prediction",
    "record_run",
    "record_telemetry",
    "table_of",
]

log = logging.getLogger(__name__)


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
    insert_ignore(session, table_of(ControllerRun), {**key, "mode": mode, **fields}, list(key))
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
    return insert_ignore(
        session, table_of(Decision), vals, ["cluster", "job_id", "decided_at", "source"]
    )


def record_prediction(
    session: Session, *, job_id: int, made_at: int, predictor: str, runtime_s: float, **fields: Any
) -> bool:
    """Record a runtime prediction (False if already recorded)."""
    vals: dict[str, Any] = {"cluster": "", **fields}
    vals.update(job_id=job_id, made_at=made_at, predictor=predictor, runtime_s=runtime_s)
    return insert_ignore(
        session, table_of(Prediction), vals, ["cluster", "job_id", "made_at", "predictor"]
    )


def record_telemetry(
    session: Session, *, at: int, node: str, gpu_index: int = -1, **fields: Any
) -> bool:
    """Record one telemetry sample (``util_pct``, ``mem_used_mb``, ``power_w``, ``job_id``...).

    Returns False if a sample for the same node, GPU and time exists.
    """
    vals: dict[str, Any] = {**fields, "at": at, "node": node, "gpu_index": gpu_index}
    return insert_ignore(session, table_of(TelemetrySample), vals, ["node", "gpu_index", "at"])


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
    return insert_ignore(session, table_of(Alert), vals, ["rule", "node", "at"])


def observe_snapshots(
    engine: Any, snapshots: Any, *, cluster: str | None = None
) -> list[dict[str, Any]]:
    """Observe saved snapshots oldest first, one retried transaction each; their stats.

    Raises:
        DatabaseError: the database stayed unavailable or its schema is too old.
    """
    from slurmopt.history.db import require_schema, with_retry

    require_schema(engine)
    out: list[dict[str, Any]] = []
    for snap in sorted(snapshots, key=lambda s: s.taken_at):

        def work(session: Session, snap: Any = snap) -> ObserveStats:
            return observe(session, snap, cluster=cluster)

        out.append({"taken_at": snap.taken_at, **with_retry(engine, work).to_dict()})
    return out
