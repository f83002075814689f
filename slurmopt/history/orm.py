"""The history database's tables (SQLAlchemy 2.0 typed ORM).

Conventions: times are epoch seconds (``BigInteger``), durations seconds,
memory MiB, as in :mod:`slurmopt.model`. Every table that ingestion writes has
a natural unique key, so writing the same observation twice is an upsert, not
a duplicate. The schema is created and upgraded only by the Alembic revisions
in ``slurmopt/history/migrations`` (``slurmopt db upgrade``); a test checks
that the last revision matches this module.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (needed by SQLite batch migrations)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {int: BigInteger, dict[str, Any]: JSON, list[Any]: JSON}


# A BigInteger primary key is not an autoincrementing rowid on SQLite: use Integer there.
PK = BigInteger().with_variant(Integer(), "sqlite")


class ControllerRun(Base):
    """One controller cycle."""

    __tablename__ = "controller_runs"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    started_at: Mapped[int] = mapped_column(index=True)
    finished_at: Mapped[int | None]
    mode: Mapped[str] = mapped_column(String(16))
    """observe, advise or enforce."""
    cluster: Mapped[str] = mapped_column(String(64), default="")
    host: Mapped[str] = mapped_column(String(128), default="")
    jobs_seen: Mapped[int] = mapped_column(default=0)
    jobs_pending: Mapped[int] = mapped_column(default=0)
    moves_planned: Mapped[int] = mapped_column(default=0)
    moves_applied: Mapped[int] = mapped_column(default=0)
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)
    solver: Mapped[str | None] = mapped_column(String(32))
    seed: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("cluster", "host", "started_at"),)


class SnapshotRow(Base):
    """One snapshot the controller read (the full content lives in the samples)."""

    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64), default="")
    taken_at: Mapped[int] = mapped_column(index=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("controller_runs.id", ondelete="SET NULL")
    )
    slurm_version: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(64), default="")
    jobs_running: Mapped[int] = mapped_column(default=0)
    jobs_pending: Mapped[int] = mapped_column(default=0)
    __table_args__ = (UniqueConstraint("cluster", "taken_at"),)


class PartitionSample(Base):
    """Per-partition summary of one snapshot (utilization over time)."""

    __tablename__ = "partition_samples"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    taken_at: Mapped[int] = mapped_column(index=True)
    partition: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="UP")
    nodes_total: Mapped[int] = mapped_column(default=0)
    nodes_available: Mapped[int] = mapped_column(default=0)
    cpus_total: Mapped[int] = mapped_column(default=0)
    cpus_alloc: Mapped[int] = mapped_column(default=0)
    gpus_total: Mapped[int] = mapped_column(default=0)
    gpus_used: Mapped[int] = mapped_column(default=0)
    jobs_running: Mapped[int] = mapped_column(default=0)
    jobs_pending: Mapped[int] = mapped_column(default=0)
    __table_args__ = (UniqueConstraint("snapshot_id", "partition"),)


class NodeSample(Base):
    """One node's state in one snapshot."""

    __tablename__ = "node_samples"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    taken_at: Mapped[int] = mapped_column(index=True)
    node: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    flags: Mapped[str] = mapped_column(String(256), default="")
    cpus: Mapped[int] = mapped_column(default=0)
    cpus_alloc: Mapped[int] = mapped_column(default=0)
    memory_mb: Mapped[int] = mapped_column(default=0)
    memory_alloc_mb: Mapped[int] = mapped_column(default=0)
    gpus: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gpus_used: Mapped[dict[str, Any]] = mapped_column(default=dict)
    __table_args__ = (UniqueConstraint("snapshot_id", "node"),)


class JobRow(Base):
    """One Slurm job as slurmopt saw it over its life.

    ``state`` is the last state observed in the queue. ``left_at`` is set when
    the job is no longer in the queue; ``final_state`` is filled only from
    accounting (``sacct``), never guessed.
    """

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[int]
    submit_time: Mapped[int]
    """Slurm's submit time; with the id it tells a recycled job id apart."""
    array_job_id: Mapped[int | None]
    array_task_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256), default="")
    user: Mapped[str] = mapped_column(String(64), index=True, default="")
    account: Mapped[str | None] = mapped_column(String(64))
    qos: Mapped[str | None] = mapped_column(String(64))
    allowed_partitions: Mapped[str] = mapped_column(String(512), default="")
    """Comma-separated partitions the job may run in (as first seen pending)."""
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The :class:`~slurmopt.model.JobRequest` as JSON."""
    gpus: Mapped[int] = mapped_column(default=0)
    gpu_type: Mapped[str | None] = mapped_column(String(32))
    time_limit_s: Mapped[int | None]
    eligible_time: Mapped[int | None]
    start_time: Mapped[int | None]
    end_time: Mapped[int | None]
    """Observed end: when it was first seen gone or finished (or sacct's End)."""
    current_partitions: Mapped[str] = mapped_column(String(512), default="")
    """Partitions as last seen in the queue (pending: where it may start)."""
    partition: Mapped[str | None] = mapped_column(String(64))
    """The partition it started in."""
    gpu_type_run: Mapped[str | None] = mapped_column(String(32))
    """GPU type it actually ran on (from its allocation)."""
    state: Mapped[str] = mapped_column(String(24), default="PENDING")
    first_seen: Mapped[int] = mapped_column(default=0)
    last_seen: Mapped[int] = mapped_column(default=0)
    left_at: Mapped[int | None]
    final_state: Mapped[str | None] = mapped_column(String(24))
    exit_code: Mapped[str | None] = mapped_column(String(16))
    slurm_estimate_start: Mapped[int | None]
    """Slurm's own backfill start estimate, first seen while pending."""
    reason: Mapped[str | None] = mapped_column(String(128))
    """Slurm's pending reason as last seen (``Priority``, ``Resources``, ``JobHeldUser``...)."""
    managed: Mapped[bool] = mapped_column(Boolean, default=False)
    """Submitted through optsub (or opted in by a site rule)."""
    __table_args__ = (
        UniqueConstraint("cluster", "job_id", "submit_time"),
        Index("ix_jobs_user_end", "user", "end_time"),
    )


class JobEvent(Base):
    """A state transition or partition change of a job."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    """submit, start, partition, end, left, final, moved."""
    state: Mapped[str | None] = mapped_column(String(24))
    partition: Mapped[str | None] = mapped_column(String(512))
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("job_pk", "at", "kind"),)


class Decision(Base):
    """One placement decision (controller or optsub), applied or not."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("controller_runs.id", ondelete="SET NULL")
    )
    cluster: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[int] = mapped_column(index=True)
    decided_at: Mapped[int] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(16), default="controller")
    """controller or optsub."""
    mode: Mapped[str] = mapped_column(String(16), default="observe")
    solver: Mapped[str | None] = mapped_column(String(32))
    seed: Mapped[int | None]
    from_partitions: Mapped[str] = mapped_column(String(512), default="")
    to_partition: Mapped[str] = mapped_column(String(64), default="")
    gpu_type: Mapped[str | None] = mapped_column(String(32))
    candidates: Mapped[list[Any]] = mapped_column(default=list)
    """Partitions considered, each ``{"partition", "start", "end"}``."""
    predicted_start: Mapped[float | None] = mapped_column(Float)
    predicted_end: Mapped[float | None] = mapped_column(Float)
    predicted_runtime: Mapped[float | None] = mapped_column(Float)
    slurm_estimate_start: Mapped[int | None]
    gain_s: Mapped[float | None] = mapped_column(Float)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(32), default="")
    """applied, advised, observed, failed, not-pending, skipped..."""
    reason: Mapped[str | None] = mapped_column(Text)
    managed_by: Mapped[str | None] = mapped_column(String(64))
    """The channel that made the job managed (controller decisions; docs/security.md)."""
    __table_args__ = (UniqueConstraint("cluster", "job_id", "decided_at", "source"),)


class Prediction(Base):
    """A runtime (and start) prediction made for a job."""

    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[int] = mapped_column(index=True)
    made_at: Mapped[int]
    predictor: Mapped[str] = mapped_column(String(32))
    runtime_s: Mapped[float] = mapped_column(Float)
    start_at: Mapped[float | None] = mapped_column(Float)
    partition: Mapped[str | None] = mapped_column(String(64))
    basis: Mapped[str | None] = mapped_column(String(128))
    """What it rests on: ``user+name(2)``, ``request``, ``repredict(1)``..."""
    __table_args__ = (UniqueConstraint("cluster", "job_id", "made_at", "predictor"),)


class TelemetrySample(Base):
    """One GPU's reading from ``slurmopt probe``."""

    __tablename__ = "telemetry_samples"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    at: Mapped[int] = mapped_column(index=True)
    node: Mapped[str] = mapped_column(String(128))
    gpu_index: Mapped[int] = mapped_column(default=-1)
    """-1 for a host-level sample."""
    gpu_type: Mapped[str | None] = mapped_column(String(32))
    job_id: Mapped[int | None]
    util_pct: Mapped[float | None] = mapped_column(Float)
    mem_used_mb: Mapped[float | None] = mapped_column(Float)
    power_w: Mapped[float | None] = mapped_column(Float)
    temp_c: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("node", "gpu_index", "at"),)


class Alert(Base):
    """A health alert raised by a rule."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    at: Mapped[int] = mapped_column(index=True)
    severity: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(128), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[int | None]
    __table_args__ = (UniqueConstraint("rule", "node", "at"),)


class SpoolRecord(Base):
    """A record read from optsub's spool, kept verbatim (dedup by its key)."""

    __tablename__ = "spool_records"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    at: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32), default="")
    job_id: Mapped[int | None] = mapped_column(index=True)
    user: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ingested_at: Mapped[int] = mapped_column(default=0)
    owner_uid: Mapped[int | None]
    """The spool file's owner as the file system reports it (None: ingested before 0004)."""
    owner: Mapped[str | None] = mapped_column(String(64))
    """That owner's user name: the only user the record may speak for."""


class TrustRefusal(Base):
    """An input refused for a trust reason (the audit trail, docs/security.md)."""

    __tablename__ = "trust_refusals"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    at: Mapped[int] = mapped_column(index=True)
    component: Mapped[str] = mapped_column(String(16))
    """ingest or controller."""
    who: Mapped[str] = mapped_column(String(64))
    what: Mapped[str] = mapped_column(String(256))
    why: Mapped[str] = mapped_column(String(256))


# Which column holds each table's time, for prune and export.
TIME_COLUMN: dict[str, str] = {
    "controller_runs": "started_at",
    "snapshots": "taken_at",
    "partition_samples": "taken_at",
    "node_samples": "taken_at",
    "jobs": "last_seen",
    "decisions": "decided_at",
    "predictions": "made_at",
    "telemetry_samples": "at",
    "alerts": "at",
    "spool_records": "at",
    "trust_refusals": "at",
}
