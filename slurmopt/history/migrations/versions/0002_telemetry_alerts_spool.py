"""Telemetry samples, alerts, optsub spool records; jobs.managed, decisions.candidates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("rule", "node", "at", name=op.f("uq_alerts_rule_node_at")),
    )
    op.create_index(op.f("ix_alerts_at"), "alerts", ["at"], unique=False)
    op.create_table(
        "spool_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("user", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("ingested_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spool_records")),
        sa.UniqueConstraint("key", name=op.f("uq_spool_records_key")),
    )
    op.create_index(op.f("ix_spool_records_at"), "spool_records", ["at"], unique=False)
    op.create_index(op.f("ix_spool_records_job_id"), "spool_records", ["job_id"], unique=False)
    op.create_table(
        "telemetry_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("gpu_index", sa.BigInteger(), nullable=False),
        sa.Column("gpu_type", sa.String(length=32), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("util_pct", sa.Float(), nullable=True),
        sa.Column("mem_used_mb", sa.Float(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("temp_c", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_samples")),
        sa.UniqueConstraint(
            "node", "gpu_index", "at", name=op.f("uq_telemetry_samples_node_gpu_index_at")
        ),
    )
    op.create_index(op.f("ix_telemetry_samples_at"), "telemetry_samples", ["at"], unique=False)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("managed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("candidates", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("candidates")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("managed")
    op.drop_table("telemetry_samples")
    op.drop_table("spool_records")
    op.drop_table("alerts")
