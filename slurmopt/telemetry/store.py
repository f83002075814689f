"""Where telemetry samples and alerts are written: the history database, or memory.

:class:`TelemetryStore` is the small interface the probe (``--push``), the
alert engine and the exporter use. :class:`HistoryStore` writes to the history
database's ``telemetry_samples`` and ``alerts`` tables
(:mod:`slurmopt.history.orm`); :class:`MemoryStore` keeps them in lists (tests,
and ``slurmopt alerts`` runs without a database).

Alerts are keyed by ``(rule, subject)``; the ``alerts`` table has no subject
column, so the subject (``node`` or ``node:gpuN`` or ``partition:NAME``) is
kept in its ``node`` column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from slurmopt.telemetry.probe import ProbeResult

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GpuPoint:
    """One GPU reading as stored (a row of ``telemetry_samples``)."""

    at: int
    node: str
    gpu_index: int
    gpu_type: str | None = None
    job_id: int | None = None
    util_pct: float | None = None
    mem_used_mb: float | None = None
    power_w: float | None = None
    temp_c: float | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as stored (a row of ``alerts``)."""

    at: int
    rule: str
    subject: str
    severity: str
    message: str
    resolved_at: int | None = None


def points_from_probe(probe: ProbeResult) -> list[GpuPoint]:
    """The stored form of a probe's GPUs (lost GPUs and GPUs without a reading skipped)."""
    at = int(probe.taken_at)
    out: list[GpuPoint] = []
    for g in probe.gpus:
        if g.lost:
            continue
        out.append(
            GpuPoint(
                at=at,
                node=probe.node,
                gpu_index=g.index,
                gpu_type=None if g.name is None else g.name[:32],
                job_id=g.job_id,
                util_pct=None if g.util_sm_pct is None else float(g.util_sm_pct),
                mem_used_mb=None if g.memory_used_mb is None else float(g.memory_used_mb),
                power_w=g.power_w,
                temp_c=None if g.temperature_c is None else float(g.temperature_c),
            )
        )
    return out


class TelemetryStore(Protocol):
    """What telemetry writes and reads back."""

    def add_points(self, points: list[GpuPoint]) -> int:
        """Store GPU readings (idempotent per node, GPU and time); returns how many are new."""
        ...

    def points_since(self, since: int) -> list[GpuPoint]: ...

    def open_alert(self, alert: AlertRecord) -> None: ...

    def resolve_alert(self, rule: str, subject: str, at: int) -> None: ...

    def alerts(self) -> list[AlertRecord]: ...


@dataclass
class MemoryStore:
    """A :class:`TelemetryStore` in memory."""

    points: list[GpuPoint] = field(default_factory=list)
    records: list[AlertRecord] = field(default_factory=list)

    def add_points(self, points: list[GpuPoint]) -> int:
        have = {(p.node, p.gpu_index, p.at) for p in self.points}
        new = [p for p in points if (p.node, p.gpu_index, p.at) not in have]
        self.points.extend(new)
        return len(new)

    def points_since(self, since: int) -> list[GpuPoint]:
        return [p for p in self.points if p.at >= since]

    def open_alert(self, alert: AlertRecord) -> None:
        self.records.append(alert)

    def resolve_alert(self, rule: str, subject: str, at: int) -> None:
        from dataclasses import replace

        self.records = [
            replace(r, resolved_at=at)
            if r.rule == rule and r.subject == subject and r.resolved_at is None
            else r
            for r in self.records
        ]

    def alerts(self) -> list[AlertRecord]:
        return list(self.records)


class HistoryStore:
    """A :class:`TelemetryStore` over the history database.

    Raises:
        slurmopt.history.db.DatabaseError: the database is unreachable or not upgraded
            (from the constructor with ``check=True``, or from any write).
    """

    def __init__(self, engine: Engine, *, check: bool = True) -> None:
        from slurmopt.history import db

        self.engine = engine
        if check:
            db.require_schema(engine)

    def add_points(self, points: list[GpuPoint]) -> int:
        from sqlalchemy import select

        from slurmopt.history import db, orm

        def work(session: Any) -> int:
            n = 0
            for p in points:
                exists = session.scalar(
                    select(orm.TelemetrySample.id).where(
                        orm.TelemetrySample.node == p.node,
                        orm.TelemetrySample.gpu_index == p.gpu_index,
                        orm.TelemetrySample.at == p.at,
                    )
                )
                if exists is None:
                    session.add(orm.TelemetrySample(**_point_kw(p)))
                    n += 1
            return n

        return db.with_retry(self.engine, work)

    def points_since(self, since: int) -> list[GpuPoint]:
        from sqlalchemy import select

        from slurmopt.history import db, orm

        def work(session: Any) -> list[GpuPoint]:
            rows = session.scalars(
                select(orm.TelemetrySample)
                .where(orm.TelemetrySample.at >= since)
                .order_by(orm.TelemetrySample.at)
            )
            return [
                GpuPoint(
                    at=r.at,
                    node=r.node,
                    gpu_index=r.gpu_index,
                    gpu_type=r.gpu_type,
                    job_id=r.job_id,
                    util_pct=r.util_pct,
                    mem_used_mb=r.mem_used_mb,
                    power_w=r.power_w,
                    temp_c=r.temp_c,
                )
                for r in rows
            ]

        return db.with_retry(self.engine, work)

    def open_alert(self, alert: AlertRecord) -> None:
        from slurmopt.history import db, orm

        def work(session: Any) -> None:
            session.add(
                orm.Alert(
                    at=alert.at,
                    severity=alert.severity,
                    rule=alert.rule[:64],
                    node=alert.subject[:128],
                    message=alert.message,
                    resolved_at=alert.resolved_at,
                )
            )

        db.with_retry(self.engine, work)

    def resolve_alert(self, rule: str, subject: str, at: int) -> None:
        from sqlalchemy import update

        from slurmopt.history import db, orm

        def work(session: Any) -> None:
            session.execute(
                update(orm.Alert)
                .where(
                    orm.Alert.rule == rule[:64],
                    orm.Alert.node == subject[:128],
                    orm.Alert.resolved_at.is_(None),
                )
                .values(resolved_at=at)
            )

        db.with_retry(self.engine, work)

    def alerts(self) -> list[AlertRecord]:
        from sqlalchemy import select

        from slurmopt.history import db, orm

        def work(session: Any) -> list[AlertRecord]:
            rows = session.scalars(select(orm.Alert).order_by(orm.Alert.at, orm.Alert.id))
            return [
                AlertRecord(r.at, r.rule, r.node, r.severity, r.message, r.resolved_at)
                for r in rows
            ]

        return db.with_retry(self.engine, work)


def _point_kw(p: GpuPoint) -> dict[str, Any]:
    return {
        "at": p.at,
        "node": p.node,
        "gpu_index": p.gpu_index,
        "gpu_type": p.gpu_type,
        "job_id": p.job_id,
        "util_pct": p.util_pct,
        "mem_used_mb": p.mem_used_mb,
        "power_w": p.power_w,
        "temp_c": p.temp_c,
    }
