"""Sessions and batches (qiskit-ibm-runtime's ``Session`` and ``Batch``): the ``job_groups``
table, and each job's ``session_id``.

Revision ID: 0008_issue17_job_groups
Revises: 0007_issue15_job_started_on
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_issue17_job_groups"
down_revision: str | None = "0007_issue15_job_started_on"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "job_groups",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("max_time", sa.Integer(), nullable=False),
        _utc("created_at", nullable=False),
        _utc("activated_at"),
        _utc("expires_at"),
        _utc("closed_at"),
        _utc("cancelled_at"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_job_groups_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_job_groups"),
    )
    op.create_index("ix_job_groups_owner_id_created_at", "job_groups", ["owner_id", "created_at"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("session_id", sa.String(40), nullable=True))
        batch.create_index("ix_jobs_session_id", ["session_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_session_id")
        batch.drop_column("session_id")
    op.drop_index("ix_job_groups_owner_id_created_at", "job_groups")
    op.drop_table("job_groups")
