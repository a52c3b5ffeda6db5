"""How far each 2021-client websocket stream got, so a reconnect to any replica resumes there.

Revision ID: 0005_issue16_stream_deliveries
Revises: 0003_issue18_hardening
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_issue16_stream_deliveries"
down_revision: str | None = "0003_issue18_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_deliveries",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_stream_deliveries_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", "job_id", name=op.f("pk_stream_deliveries")),
    )
    op.create_index(
        op.f("ix_stream_deliveries_expires_at"), "stream_deliveries", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_stream_deliveries_expires_at"), table_name="stream_deliveries")
    op.drop_table("stream_deliveries")
