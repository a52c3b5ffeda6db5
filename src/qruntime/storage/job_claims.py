"""Who runs a job: claiming queued jobs, the owner's lease, and taking over a dead owner's jobs.

Every statement is conditional on the state it expects (still QUEUED, lease still expired,
still the same owner), so replicas racing for the same job cannot both win. On PostgreSQL,
claims lock the queued rows they consider with ``FOR UPDATE SKIP LOCKED`` (a row another
replica is claiming is skipped, not waited for); SQLite's single writer needs no row locks.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.sessions import SessionMode
from qruntime.storage.jobs import lock_owners, select_jobs
from qruntime.storage.models import JOB_GROUPS, JOBS, utcnow
from qruntime.storage.records import StoredJob

_QUEUED = JobStatus.QUEUED.value
_RUNNING = JobStatus.RUNNING.value


@dataclass(frozen=True)
class QueuedJob:
    """What a claim needs to choose among queued jobs, without their source and inputs."""

    id: str
    owner_id: int
    #: JobResources as JSON text.
    resources: str | None = None
    #: Its session or batch, if any.
    session_id: str | None = None


class JobClaims:
    """Ownership of running jobs, inside the caller's session; never commits."""

    def __init__(self, session: Session):
        self._session = session

    # --- claiming ---------------------------------------------------------------------------

    def queued_heads(
        self, per_owner: int, *, now: datetime | None = None
    ) -> builtins.list[QueuedJob]:
        """Each user's ``per_owner`` oldest queued jobs that may start, oldest first (no locks
        taken). A session's job may start once every job submitted to it before has ended.
        With ``now``, jobs another replica holds (see :meth:`hold`) are left out."""
        rank = (
            func.row_number()
            .over(partition_by=JOBS.c.owner_id, order_by=(JOBS.c.created_at, JOBS.c.id))
            .label("rank")
        )
        may_start = or_(JOBS.c.session_id.is_(None), JOBS.c.id.in_(_startable_in_groups()))
        ranked = (
            select(
                JOBS.c.id,
                JOBS.c.owner_id,
                JOBS.c.created_at,
                JOBS.c.resources,
                JOBS.c.session_id,
                rank,
            )
            .where(JOBS.c.status == _QUEUED, may_start, *_claimable(now))
            .subquery()
        )
        rows = self._session.execute(
            select(ranked.c.id, ranked.c.owner_id, ranked.c.resources, ranked.c.session_id)
            .where(ranked.c.rank <= per_owner)
            .order_by(ranked.c.created_at, ranked.c.id)
        )
        return [QueuedJob(row.id, row.owner_id, row.resources, row.session_id) for row in rows]

    def lock_owners(self, owner_ids: Collection[int]) -> None:
        """Serialise claims and submits per user, so per-user counts hold cluster-wide."""
        lock_owners(self._session, owner_ids)

    def running_per_owner(
        self, owner_ids: Collection[int], *, now: datetime | None = None
    ) -> Counter[int]:
        """RUNNING jobs of these users on every replica; with ``now``, held ones too (they
        start as soon as Ray places them)."""
        active = JOBS.c.status == _RUNNING
        if now is not None:
            active = or_(active, _held(now))
        rows = self._session.execute(
            select(JOBS.c.owner_id, func.count())
            .where(active, JOBS.c.owner_id.in_(owner_ids))
            .group_by(JOBS.c.owner_id)
        )
        return Counter({owner: count for owner, count in rows})

    def lock_queued(
        self, job_ids: Collection[str], *, now: datetime | None = None
    ) -> builtins.list[QueuedJob]:
        """Those of ``job_ids`` still queued and not being claimed elsewhere (nor, with
        ``now``, held), oldest first; locked until the transaction ends."""
        rows = self._session.execute(
            select(JOBS.c.id, JOBS.c.owner_id, JOBS.c.resources, JOBS.c.session_id)
            .where(JOBS.c.id.in_(job_ids), JOBS.c.status == _QUEUED, *_claimable(now))
            .order_by(JOBS.c.created_at, JOBS.c.id)
            .with_for_update(skip_locked=True)
        )
        return [QueuedJob(row.id, row.owner_id, row.resources, row.session_id) for row in rows]

    def start(
        self, job_ids: Sequence[str], *, replica_id: str, lease_until: datetime
    ) -> builtins.list[StoredJob]:
        """Mark queued jobs RUNNING on ``replica_id``; those no longer queued are left out."""
        if not job_ids:
            return []
        started = self._session.execute(
            update(JOBS)
            .where(JOBS.c.id.in_(job_ids), JOBS.c.status == _QUEUED)
            .values(
                status=_RUNNING,
                started_at=utcnow(),
                owner_replica=replica_id,
                lease_expires_at=lease_until,
            )
            .returning(JOBS.c.id)
        )
        return self._jobs(set(started.scalars()))

    # --- held jobs: claimed, QUEUED until their executor placed them -----------------------

    def hold(
        self, job_ids: Sequence[str], *, replica_id: str, lease_until: datetime, now: datetime
    ) -> builtins.list[StoredJob]:
        """Make queued jobs this replica's while they wait for a place (on Ray): they stay
        QUEUED, with an owner and a lease; another replica may take one only once its lease
        ran out. Those no longer queued or held elsewhere are left out."""
        if not job_ids:
            return []
        held = self._session.execute(
            update(JOBS)
            .where(JOBS.c.id.in_(job_ids), JOBS.c.status == _QUEUED, *_claimable(now))
            .values(owner_replica=replica_id, lease_expires_at=lease_until)
            .returning(JOBS.c.id)
        )
        return self._jobs(set(held.scalars()))

    def start_held(self, job_id: str, *, replica_id: str) -> StoredJob | None:
        """A job this replica holds is placed: RUNNING now; None if it is not held here any
        more (cancelled meanwhile, or its lease ran out and another replica has it)."""
        updated = self._session.execute(
            update(JOBS)
            .where(
                JOBS.c.id == job_id, JOBS.c.status == _QUEUED, JOBS.c.owner_replica == replica_id
            )
            .values(status=_RUNNING, started_at=utcnow())
        )
        return self._jobs({job_id})[0] if updated.rowcount else None

    def release_held(self, job_id: str, *, replica_id: str) -> bool:
        """Give a held job back to the queue (this replica will not place it)."""
        updated = self._session.execute(
            update(JOBS)
            .where(
                JOBS.c.id == job_id, JOBS.c.status == _QUEUED, JOBS.c.owner_replica == replica_id
            )
            .values(owner_replica=None, lease_expires_at=None)
        )
        return updated.rowcount > 0

    def unstart(self, job_ids: Collection[str], *, replica_id: str) -> list[str]:
        """Give claimed jobs that no process ran back to the queue (this replica is stopping
        before it could start them): the ones still RUNNING here."""
        if not job_ids:
            return []
        rows = self._session.execute(
            update(JOBS)
            .where(
                JOBS.c.id.in_(job_ids),
                JOBS.c.status == _RUNNING,
                JOBS.c.owner_replica == replica_id,
            )
            .values(status=_QUEUED, owner_replica=None, lease_expires_at=None, started_at=None)
            .returning(JOBS.c.id)
        )
        return [row.id for row in rows]

    # --- leases -----------------------------------------------------------------------------

    def renew(
        self, replica_id: str, job_ids: Collection[str], *, lease_until: datetime
    ) -> dict[str, bool]:
        """Extend the lease of the RUNNING (and held) jobs ``replica_id`` still owns: their
        ids, each with whether a cancel request is waiting for it."""
        if not job_ids:
            return {}
        rows = self._session.execute(
            update(JOBS)
            .where(
                JOBS.c.id.in_(job_ids),
                JOBS.c.status.in_((_QUEUED, _RUNNING)),
                JOBS.c.owner_replica == replica_id,
            )
            .values(lease_expires_at=lease_until)
            .returning(JOBS.c.id, JOBS.c.cancel_requested_at)
        )
        return {job_id: requested is not None for job_id, requested in rows}

    def orphans(
        self, *, now: datetime, dead_replicas: Collection[str] = ()
    ) -> builtins.list[StoredJob]:
        """RUNNING jobs whose lease ran out (or that never had one), and those of replicas
        known to be dead."""
        query = select_jobs().where(JOBS.c.status == _RUNNING, self._orphaned(now, dead_replicas))
        return [StoredJob.from_row(row) for row in self._session.execute(query)]

    def take_over(
        self,
        job: StoredJob,
        *,
        replica_id: str,
        lease_until: datetime,
        now: datetime,
        dead_replicas: Collection[str] = (),
    ) -> StoredJob | None:
        """Make ``replica_id`` the owner of an orphan; None if it is no orphan any more."""
        updated = self._session.execute(
            self._orphan_update(job, now, dead_replicas).values(
                owner_replica=replica_id, lease_expires_at=lease_until
            )
        )
        return self._jobs({job.id})[0] if updated.rowcount else None

    def end_orphan(
        self,
        job: StoredJob,
        *,
        now: datetime,
        status: JobStatus,
        reason: JobReason,
        message: str,
        dead_replicas: Collection[str] = (),
    ) -> bool:
        """End an orphan that nobody can follow; False if it is no orphan any more.

        Its lease is left as it was: ``ended_at`` after ``lease_expires_at`` shows why. The
        message counts towards the owner's stored bytes, as every job's end does.
        """
        updated = self._session.execute(
            self._orphan_update(job, now, dead_replicas).values(
                status=JobStatus(status).value,
                reason=JobReason(reason).value,
                error_message=message,
                ended_at=utcnow(),
                stored_bytes=JOBS.c.stored_bytes + len(message),
            )
        )
        return updated.rowcount > 0

    # --- cancel requests --------------------------------------------------------------------

    def request_cancel(self, job_id: str) -> StoredJob | None:
        """Ask the owner of a RUNNING job to stop it; None if the job is not running."""
        updated = self._session.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.status == _RUNNING)
            .values(cancel_requested_at=func.coalesce(JOBS.c.cancel_requested_at, utcnow()))
        )
        return self._jobs({job_id})[0] if updated.rowcount else None

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _orphaned(now: datetime, dead_replicas: Collection[str]) -> ColumnElement[bool]:
        conditions = [JOBS.c.lease_expires_at.is_(None), JOBS.c.lease_expires_at < now]
        if dead_replicas:
            conditions.append(JOBS.c.owner_replica.in_(dead_replicas))
        return or_(*conditions)

    def _orphan_update(
        self, job: StoredJob, now: datetime, dead_replicas: Collection[str]
    ) -> Update:
        """An UPDATE of ``job`` that matches only while it is the orphan it was seen as."""
        owner = (
            JOBS.c.owner_replica.is_(None)
            if job.owner_replica is None
            else JOBS.c.owner_replica == job.owner_replica
        )
        return update(JOBS).where(
            JOBS.c.id == job.id,
            JOBS.c.status == _RUNNING,
            owner,
            self._orphaned(now, dead_replicas),
        )

    def _jobs(self, job_ids: Collection[str]) -> builtins.list[StoredJob]:
        query = select_jobs().where(JOBS.c.id.in_(job_ids)).order_by(JOBS.c.created_at, JOBS.c.id)
        return [StoredJob.from_row(row) for row in self._session.execute(query)]


def _claimable(now: datetime | None) -> tuple[ColumnElement[bool], ...]:
    """A queued job no live replica holds (no condition without ``now``)."""
    if now is None:
        return ()
    return (
        or_(
            JOBS.c.owner_replica.is_(None),
            JOBS.c.lease_expires_at.is_(None),
            JOBS.c.lease_expires_at < now,
        ),
    )


def _held(now: datetime) -> ColumnElement[bool]:
    """A queued job a live replica holds while Ray places it."""
    return and_(
        JOBS.c.status == _QUEUED,
        JOBS.c.owner_replica.is_not(None),
        JOBS.c.lease_expires_at >= now,
    )


def _startable_in_groups() -> Select[Any]:
    """Ids of the queued jobs in groups that may start now: every one of a batch; of a
    session (mode ``session``) only its oldest queued job, while none of it is running.

    Uncorrelated, so the database reads it once per claim, and jobs on their own are read by
    the status index as before sessions existed.
    """
    turn = (
        func.row_number()
        .over(partition_by=JOBS.c.session_id, order_by=(JOBS.c.created_at, JOBS.c.id))
        .label("turn")
    )
    grouped = (
        select(JOBS.c.id, JOBS.c.session_id, JOB_GROUPS.c.mode, turn)
        .join(JOB_GROUPS, JOB_GROUPS.c.id == JOBS.c.session_id)
        .where(JOBS.c.status == _QUEUED, JOBS.c.session_id.is_not(None))
        .subquery()
    )
    running = JOBS.alias("running")
    busy = exists().where(
        running.c.session_id == grouped.c.session_id, running.c.status == _RUNNING
    )
    return select(grouped.c.id).where(
        or_(grouped.c.mode != SessionMode.SESSION.value, and_(grouped.c.turn == 1, ~busy))
    )
