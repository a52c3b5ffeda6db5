"""Jobs record the Ray node whose agent started them, so a job is started by one agent only
and a replica that adopts a job nobody started runs it instead of ending it.

Revision ID: 0007_issue15_job_started_on
Revises: 0006_issue17_job_tags
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_issue15_job_started_on"
down_revision: str | None = "0006_issue17_job_tags"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("started_on", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("started_on")
