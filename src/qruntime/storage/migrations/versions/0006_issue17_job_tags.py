"""Jobs carry tags (qiskit-ibm-runtime's ``job_tags``): a JSON list of strings, or none.

Revision ID: 0006_issue17_job_tags
Revises: 0005_issue16_stream_deliveries
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_issue17_job_tags"
down_revision: str | None = "0005_issue16_stream_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("tags", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("tags")
