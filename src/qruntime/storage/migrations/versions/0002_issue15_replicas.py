"""Replicas on one database: the replica registry, and each running job's owner and lease.

Revision ID: 0002_issue15_replicas
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_issue15_replicas"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("data_dir", sa.Text(), nullable=False),
        _utc("started_at"),
        _utc("heartbeat_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
    op.add_column("jobs", sa.Column("owner_replica", sa.String(length=64), nullable=True))
    op.add_column("jobs", _utc("lease_expires_at", nullable=True))
    op.add_column("jobs", _utc("cancel_requested_at", nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cancel_requested_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner_replica")
    op.drop_table("replicas")
