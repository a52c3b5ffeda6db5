"""The one clock leases are measured by: the database server's, so replicas on hosts whose
clocks disagree still agree on when a lease ran out (SQLite has one host: its clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qruntime.storage.models import utcnow


def database_now(session: Session) -> datetime:
    """Now, as an aware UTC datetime; on PostgreSQL the start of the current transaction."""
    if session.get_bind().dialect.name == "sqlite":
        return utcnow()
    return session.execute(select(func.now())).scalar_one().astimezone(UTC)
