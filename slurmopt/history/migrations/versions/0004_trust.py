"""Trust boundary (docs/security.md): attested spool record owners, the channel that made a
job managed, and the audit trail of refused input.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spool_records") as batch:
        batch.add_column(sa.Column("owner_uid", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("managed_by", sa.String(length=64), nullable=True))
    op.create_table(
        "trust_refusals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("what", sa.String(length=256), nullable=False),
        sa.Column("why", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_refusals")),
    )
    op.create_index(op.f("ix_trust_refusals_at"), "trust_refusals", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_trust_refusals_at"), table_name="trust_refusals")
    op.drop_table("trust_refusals")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("managed_by")
    with op.batch_alter_table("spool_records") as batch:
        batch.drop_column("owner")
        batch.drop_column("owner_uid")
