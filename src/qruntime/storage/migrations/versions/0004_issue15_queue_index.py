"""The shared queue's index: each user's queued jobs in order, and running jobs per user.

Revision ID: 0004_issue15_queue_index
Revises: 0003_issue15_server_secrets
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_issue15_queue_index"
down_revision: str | None = "0003_issue15_server_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_status_owner_id_created_at", "jobs", ["status", "owner_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_status_owner_id_created_at", table_name="jobs")
