"""Programs record what ``main`` accepts (parameter names, ``**kwargs``), read at upload.

Programs stored before this revision keep NULL: the service reads their source when it needs
the signature, so nothing has to be parsed here.

Revision ID: 0002_issue20_main_signature
Revises: 0002_issue15_replicas
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_issue20_main_signature"
down_revision: str | None = "0002_issue15_replicas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch:
        batch.add_column(sa.Column("main_signature", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("programs") as batch:
        batch.drop_column("main_signature")
