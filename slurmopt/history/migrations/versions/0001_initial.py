"""Initial schema: runs, snapshots, samples, jobs, job events, decisions, predictions.

Revision ID: 0001
Revises: <base>
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "controller_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=128), nullable=False),
        sa.Column("jobs_seen", sa.BigInteger(), nullable=False),
        sa.Column("jobs_pending", sa.BigInteger(), nullable=False),
        sa.Column("moves_planned", sa.BigInteger(), nullable=False),
        sa.Column("moves_applied", sa.BigInteger(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("solver", sa.String(length=32), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controller_runs")),
        sa.UniqueConstraint(
            "cluster", "host", "started_at", name=op.f("uq_controller_runs_cluster_host_started_at")
        ),
    )
    op.create_index(
        op.f("ix_controller_runs_started_at"), "controller_runs", ["started_at"], unique=False
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("submit_time", sa.BigInteger(), nullable=False),
        sa.Column("array_job_id", sa.BigInteger(), nullable=True),
        sa.Column("array_task_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("qos", sa.String(length=64), nullable=True),
        sa.Column("allowed_partitions", sa.String(length=512), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("gpus", sa.BigInteger(), nullable=False),
        sa.Column("gpu_type", sa.String(length=32), nullable=True),
        sa.Column("time_limit_s", sa.BigInteger(), nullable=True),
        sa.Column("eligible_time", sa.BigInteger(), nullable=True),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("current_partitions", sa.String(length=512), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=True),
        sa.Column("gpu_type_run", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("left_at", sa.BigInteger(), nullable=True),
        sa.Column("final_state", sa.String(length=24), nullable=True),
        sa.Column("exit_code", sa.String(length=16), nullable=True),
        sa.Column("slurm_estimate_start", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint(
            "cluster", "job_id", "submit_time", name=op.f("uq_jobs_cluster_job_id_submit_time")
        ),
    )
    op.create_index(op.f("ix_jobs_user"), "jobs", ["user"], unique=False)
    op.create_index("ix_jobs_user_end", "jobs", ["user", "end_time"], unique=False)
    op.create_table(
        "predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("made_at", sa.BigInteger(), nullable=False),
        sa.Column("predictor", sa.String(length=32), nullable=False),
        sa.Column("runtime_s", sa.Float(), nullable=False),
        sa.Column("start_at", sa.Float(), nullable=True),
        sa.Column("partition", sa.String(length=64), nullable=True),
        sa.Column("basis", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint(
            "cluster",
            "job_id",
            "made_at",
            "predictor",
            name=op.f("uq_predictions_cluster_job_id_made_at_predictor"),
        ),
    )
    op.create_index(op.f("ix_predictions_job_id"), "predictions", ["job_id"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("solver", sa.String(length=32), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("from_partitions", sa.String(length=512), nullable=False),
        sa.Column("to_partition", sa.String(length=64), nullable=False),
        sa.Column("gpu_type", sa.String(length=32), nullable=True),
        sa.Column("predicted_start", sa.Float(), nullable=True),
        sa.Column("predicted_end", sa.Float(), nullable=True),
        sa.Column("predicted_runtime", sa.Float(), nullable=True),
        sa.Column("slurm_estimate_start", sa.BigInteger(), nullable=True),
        sa.Column("gain_s", sa.Float(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["controller_runs.id"],
            name=op.f("fk_decisions_run_id_controller_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint(
            "cluster",
            "job_id",
            "decided_at",
            "source",
            name=op.f("uq_decisions_cluster_job_id_decided_at_source"),
        ),
    )
    op.create_index(op.f("ix_decisions_decided_at"), "decisions", ["decided_at"], unique=False)
    op.create_index(op.f("ix_decisions_job_id"), "decisions", ["job_id"], unique=False)
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=True),
        sa.Column("partition", sa.String(length=512), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.id"], name=op.f("fk_job_events_job_pk_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
        sa.UniqueConstraint("job_pk", "at", "kind", name=op.f("uq_job_events_job_pk_at_kind")),
    )
    op.create_index(op.f("ix_job_events_job_pk"), "job_events", ["job_pk"], unique=False)
    op.create_table(
        "snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("slurm_version", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("jobs_running", sa.BigInteger(), nullable=False),
        sa.Column("jobs_pending", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["controller_runs.id"],
            name=op.f("fk_snapshots_run_id_controller_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("cluster", "taken_at", name=op.f("uq_snapshots_cluster_taken_at")),
    )
    op.create_index(op.f("ix_snapshots_taken_at"), "snapshots", ["taken_at"], unique=False)
    op.create_table(
        "node_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("flags", sa.String(length=256), nullable=False),
        sa.Column("cpus", sa.BigInteger(), nullable=False),
        sa.Column("cpus_alloc", sa.BigInteger(), nullable=False),
        sa.Column("memory_mb", sa.BigInteger(), nullable=False),
        sa.Column("memory_alloc_mb", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.Column("gpus_used", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_node_samples_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_samples")),
        sa.UniqueConstraint("snapshot_id", "node", name=op.f("uq_node_samples_snapshot_id_node")),
    )
    op.create_index(op.f("ix_node_samples_taken_at"), "node_samples", ["taken_at"], unique=False)
    op.create_table(
        "partition_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("nodes_total", sa.BigInteger(), nullable=False),
        sa.Column("nodes_available", sa.BigInteger(), nullable=False),
        sa.Column("cpus_total", sa.BigInteger(), nullable=False),
        sa.Column("cpus_alloc", sa.BigInteger(), nullable=False),
        sa.Column("gpus_total", sa.BigInteger(), nullable=False),
        sa.Column("gpus_used", sa.BigInteger(), nullable=False),
        sa.Column("jobs_running", sa.BigInteger(), nullable=False),
        sa.Column("jobs_pending", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_partition_samples_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partition_samples")),
        sa.UniqueConstraint(
            "snapshot_id", "partition", name=op.f("uq_partition_samples_snapshot_id_partition")
        ),
    )
    op.create_index(
        op.f("ix_partition_samples_taken_at"), "partition_samples", ["taken_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("partition_samples")
    op.drop_table("node_samples")
    op.drop_table("snapshots")
    op.drop_table("job_events")
    op.drop_table("decisions")
    op.drop_table("predictions")
    op.drop_table("jobs")
    op.drop_table("controller_runs")
