"""Use cases for sessions and batches: open, read, close, cancel, and who may submit into one.

A group belongs to its owner (admins see all; for anyone else it does not exist). Closing
stops new jobs and lets queued ones run; cancelling also cancels its queued and running jobs.
Its ``max_time`` runs from its first job's start; a queued job of a group out of time ends
CANCELLED / SESSION ENDED without starting, a running one runs on within its own time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from qruntime.backends import BackendRegistry
from qruntime.domain.errors import InvalidStateError, NotFoundError, Problem, ValidationFailed
from qruntime.domain.sessions import DEFAULT_MAX_TIME, MAX_MAX_TIME, SessionMode, SessionState
from qruntime.service.principal import Principal
from qruntime.storage import Database, JobRepository, StoredJob
from qruntime.storage.clock import database_now
from qruntime.storage.job_groups import JobGroupRepository
from qruntime.storage.records import StoredJobGroup

if TYPE_CHECKING:
    from qruntime.service.scheduler import Scheduler


class InvalidSessionRequestError(ValidationFailed):
    what = "session request"


def new_session_id() -> str:
    return f"s-{uuid.uuid4().hex[:20]}"


def admit_job(session: Session, caller: Principal, group_id: str, backend: str) -> None:
    """Refuse a job for a group that is not the caller's own (admins too: a job belongs to
    whoever submits it), is on another backend, or takes no more jobs; under the group's
    row lock, so a close or cancel cannot slip in between."""
    group = JobGroupRepository(session).lock(group_id)
    if group is None or group.owner_id != caller.user_id:
        raise NotFoundError("session", group_id)
    if group.backend != backend:
        raise InvalidSessionRequestError(
            Problem(
                "session_id",
                f"{group.mode} {group_id!r} runs on {group.backend!r}, not {backend!r}",
            )
        )
    now = database_now(session)
    if not group.clock.accepting_jobs(now):
        raise InvalidStateError(refusal_message(group))


def refusal_message(group: StoredJobGroup) -> str:
    """Why a group takes no more jobs, and what to do instead."""
    what = f"{group.mode} {group.id!r}"
    if group.cancelled_at is not None:
        why = "was cancelled"
    elif group.closed_at is not None:
        why = "was closed"
    else:
        when = group.expires_at.isoformat() if group.expires_at else "?"
        why = f"reached its max_time of {group.max_time} s at {when}"
    return f"{what} {why} and accepts no new jobs; open a new {group.mode}"


class SessionService:
    def __init__(self, db: Database, registry: BackendRegistry, scheduler: Scheduler):
        self._db = db
        self._registry = registry
        self._scheduler = scheduler

    def open(
        self, caller: Principal, *, mode: SessionMode, backend: str, max_time: int | None
    ) -> StoredJobGroup:
        """A new group on ``backend`` (which must exist), with at most 8 h of ``max_time``."""
        self._registry.info(backend)  # UnknownBackendError names the ones there are
        seconds = DEFAULT_MAX_TIME if max_time is None else max_time
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not (1 <= seconds <= MAX_MAX_TIME)
        ):
            message = f"must be whole seconds from 1 to {MAX_MAX_TIME}, got {max_time!r}"
            raise InvalidSessionRequestError(Problem("max_time", message))
        group_id = new_session_id()
        with self._db.session() as session:
            groups = JobGroupRepository(session)
            groups.add(
                id=group_id,
                owner_id=caller.user_id,
                mode=SessionMode(mode).value,
                backend=backend,
                max_time=seconds,
            )
            return groups.require(group_id)

    def get(self, caller: Principal, group_id: str) -> StoredJobGroup:
        with self._db.session(readonly=True) as session:
            group = JobGroupRepository(session).get(group_id)
        if group is None or not caller.owns(group.owner_id):
            raise NotFoundError("session", group_id)
        return group

    def now(self) -> datetime:
        """The database's clock, which group clocks are kept by (every replica agrees)."""
        with self._db.session(readonly=True) as session:
            return database_now(session)

    def state(self, group: StoredJobGroup) -> SessionState:
        return group.clock.state(self.now())

    def list(
        self, caller: Principal, *, limit: int | None, offset: int = 0
    ) -> tuple[list[StoredJobGroup], int]:
        with self._db.session(readonly=True) as session:
            return JobGroupRepository(session).list(
                owner_id=None if caller.is_admin else caller.user_id, limit=limit, offset=offset
            )

    def jobs(
        self, caller: Principal, group_id: str, *, limit: int | None = None
    ) -> list[StoredJob]:
        """The group's jobs in submission order."""
        self.get(caller, group_id)
        with self._db.session(readonly=True) as session:
            jobs, _ = JobRepository(session).list(
                owner_id=None, limit=limit, session_id=group_id, oldest_first=True
            )
        return jobs

    def close(self, caller: Principal, group_id: str) -> StoredJobGroup:
        """No new jobs; those queued and running finish. Closing twice changes nothing."""
        self.get(caller, group_id)
        with self._db.session() as session:
            groups = JobGroupRepository(session)
            groups.lock(group_id)
            groups.close(group_id, database_now(session))
        return self.get(caller, group_id)

    async def cancel(self, caller: Principal, group_id: str) -> StoredJobGroup:
        """No new jobs, and its queued and running jobs are cancelled (those that end
        meanwhile keep their outcome)."""
        await asyncio.to_thread(self.get, caller, group_id)
        pending = await asyncio.to_thread(self._mark_cancelled, group_id)
        for job_id in pending:
            with contextlib.suppress(InvalidStateError):  # it ended on its own meanwhile
                await self._scheduler.cancel(job_id)
        self._scheduler.wake()
        return await asyncio.to_thread(self.get, caller, group_id)

    def _mark_cancelled(self, group_id: str) -> list[str]:
        with self._db.session() as session:
            groups = JobGroupRepository(session)
            groups.lock(group_id)
            groups.cancel(group_id, database_now(session))
            return groups.pending_job_ids(group_id)
