"""Sessions and batches as stored: the group rows, and the job counts their state needs.

Each change is a conditional UPDATE (close once, cancel once, activate once), so callers on
different replicas cannot both win it. Rules (who may, what is refused) are the service's.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, insert, select, update
from sqlalchemy.orm import Session

from qruntime.domain.errors import NotFoundError
from qruntime.domain.job import JobStatus
from qruntime.storage.models import JOB_GROUPS, JOBS, USERS, utcnow
from qruntime.storage.records import StoredJobGroup

_PENDING = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _select_groups() -> Select[Any]:
    """Groups with their owner's name and their jobs counted, as StoredJobGroup expects."""
    counts = (
        select(
            JOBS.c.session_id,
            func.count().label("job_count"),
            func.sum(case((JOBS.c.status.in_(_PENDING), 1), else_=0)).label("pending_jobs"),
            func.max(JOBS.c.started_at).label("last_job_started"),
            func.max(JOBS.c.ended_at).label("last_job_ended"),
        )
        .where(JOBS.c.session_id.is_not(None))
        .group_by(JOBS.c.session_id)
        .subquery()
    )
    return (
        select(
            JOB_GROUPS,
            USERS.c.name.label("owner_name"),
            counts.c.job_count,
            counts.c.pending_jobs,
            counts.c.last_job_started,
            counts.c.last_job_ended,
        )
        .join(USERS, USERS.c.id == JOB_GROUPS.c.owner_id)
        .outerjoin(counts, counts.c.session_id == JOB_GROUPS.c.id)
    )


class JobGroupRepository:
    """Stores sessions and batches inside the caller's session; never commits."""

    def __init__(self, session: Session):
        self._session = session

    def add(self, *, id: str, owner_id: int, mode: str, backend: str, max_time: int) -> None:
        self._session.execute(
            insert(JOB_GROUPS).values(
                id=id,
                owner_id=owner_id,
                mode=mode,
                backend=backend,
                max_time=max_time,
                created_at=utcnow(),
            )
        )

    def get(self, group_id: str) -> StoredJobGroup | None:
        query = _select_groups().where(JOB_GROUPS.c.id == group_id)
        row = self._session.execute(query).first()
        return StoredJobGroup.from_row(row) if row is not None else None

    def lock(self, group_id: str) -> StoredJobGroup | None:
        """The group, its row locked until the transaction ends (PostgreSQL; SQLite has one
        writer): a submit into it and its close or cancel happen one after the other."""
        if self._session.get_bind().dialect.name != "sqlite":
            self._session.execute(
                select(JOB_GROUPS.c.id).where(JOB_GROUPS.c.id == group_id).with_for_update()
            )
        return self.get(group_id)

    def list(
        self, *, owner_id: int | None, limit: int | None, offset: int = 0
    ) -> tuple[builtins.list[StoredJobGroup], int]:
        """One page, newest first, and the number of all; ``owner_id`` None = everyone's."""
        where = [] if owner_id is None else [JOB_GROUPS.c.owner_id == owner_id]
        total = self._session.execute(
            select(func.count()).select_from(JOB_GROUPS).where(*where)
        ).scalar_one()
        query = (
            _select_groups()
            .where(*where)
            .order_by(JOB_GROUPS.c.created_at.desc(), JOB_GROUPS.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [StoredJobGroup.from_row(row) for row in self._session.execute(query)], total

    def close(self, group_id: str, now: datetime) -> None:
        """Accept no more jobs (once; a later close keeps the first moment)."""
        self._session.execute(
            update(JOB_GROUPS)
            .where(JOB_GROUPS.c.id == group_id, JOB_GROUPS.c.closed_at.is_(None))
            .values(closed_at=now)
        )

    def cancel(self, group_id: str, now: datetime) -> None:
        """Mark the group cancelled (and closed); its jobs are the caller's to cancel."""
        self.close(group_id, now)
        self._session.execute(
            update(JOB_GROUPS)
            .where(JOB_GROUPS.c.id == group_id, JOB_GROUPS.c.cancelled_at.is_(None))
            .values(cancelled_at=now)
        )

    def activate(self, group_ids: Collection[str], now: datetime) -> None:
        """The first job of each of these groups started now: their clocks start."""
        rows = self._session.execute(
            select(JOB_GROUPS.c.id, JOB_GROUPS.c.max_time).where(
                JOB_GROUPS.c.id.in_(group_ids), JOB_GROUPS.c.activated_at.is_(None)
            )
        ).all()
        for group_id, max_time in rows:
            self._session.execute(
                update(JOB_GROUPS)
                .where(JOB_GROUPS.c.id == group_id, JOB_GROUPS.c.activated_at.is_(None))
                .values(activated_at=now, expires_at=now + timedelta(seconds=max_time))
            )

    def ended_among(self, group_ids: Collection[str], now: datetime) -> dict[str, StoredJobGroup]:
        """Those of these groups whose jobs may no longer start: cancelled or out of time."""
        rows = self._session.execute(
            _select_groups().where(
                JOB_GROUPS.c.id.in_(group_ids),
                (JOB_GROUPS.c.cancelled_at.is_not(None)) | (JOB_GROUPS.c.expires_at <= now),
            )
        )
        return {row.id: StoredJobGroup.from_row(row) for row in rows}

    def pending_job_ids(self, group_id: str) -> builtins.list[str]:
        """The group's queued and running jobs, oldest first."""
        rows = self._session.execute(
            select(JOBS.c.id)
            .where(JOBS.c.session_id == group_id, JOBS.c.status.in_(_PENDING))
            .order_by(JOBS.c.created_at, JOBS.c.id)
        )
        return builtins.list(rows.scalars())

    def require(self, group_id: str) -> StoredJobGroup:
        group = self.get(group_id)
        if group is None:
            raise NotFoundError("session", group_id)
        return group
