"""Jobs carry the resources they reserve (CPUs, memory, GPUs) for the Ray executor.

Revision ID: 0003_issue15_job_resources
Revises: 0004_issue15_queue_index
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_issue15_job_resources"
down_revision: str | None = "0004_issue15_queue_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("resources", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("resources")
