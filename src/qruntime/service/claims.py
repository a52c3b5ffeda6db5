"""Claiming queued jobs for one replica, safely beside any number of others.

One transaction: each user's oldest queued jobs are read, fair share picks among them by the
RUNNING jobs each user has on *every* replica, the picked ones are locked unless another
replica is claiming them this instant (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: skipped, not
waited for; fair share then picks again among the rest), and they become RUNNING here with a
lease. Only what is picked is locked, so a claim costs the same with ten or ten thousand jobs
waiting. A cap on running jobs per user is checked again under a lock on the user's
row, so two replicas claiming at once cannot both take a user's last free place.

The scheduler claims on the plain DB-API path (:func:`claim_plain`) as a rule, and through an
ORM session (:func:`claim_jobs`) when jobs of sessions or batches are among the heads, or the
executor places jobs before they start (held jobs); both pick with the same code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from qruntime.domain.job import JobReason, JobStatus
from qruntime.service.fair_share import FairShare
from qruntime.storage import JobRepository, StoredJob
from qruntime.storage.clock import database_now
from qruntime.storage.job_claims import JobClaims, QueuedJob
from qruntime.storage.job_groups import JobGroupRepository
from qruntime.storage.plain_claims import ClaimTransaction
from qruntime.storage.signals import Signals

#: Rounds of picking again when another replica holds what was picked.
LOCK_ROUNDS = 3
#: Either way of claiming: an ORM session's, or the plain DB-API path's.
_Claims = JobClaims | ClaimTransaction


def claim_jobs(
    session: Session,
    *,
    replica_id: str,
    slots: int,
    lease_seconds: float,
    fair_share: FairShare,
    signals: Signals,
    max_running_per_user: int | None = None,
    fits: Callable[[str | None], bool] | None = None,
    ended: list[str] | None = None,
    hold: bool = False,
) -> list[StoredJob]:
    """Up to ``slots`` queued jobs, now RUNNING on ``replica_id``; commit to keep them.
    ``hold``: they stay QUEUED, held by ``replica_id`` until it starts them once their
    executor placed them (Ray: until then they only wait, and show as waiting).

    Queued jobs of a session or batch that was cancelled or ran out of time end CANCELLED
    instead of starting; their ids are added to ``ended``.
    """
    if slots <= 0:
        return []
    claims = JobClaims(session)
    now = database_now(session)
    heads = claims.queued_heads(per_owner=slots, now=now)
    if not heads:
        return []
    if any(job.session_id is not None for job in heads):
        heads = _without_ended_groups(session, heads, signals, ended)
    if fits is not None:  # the executor has no room for the others now: they stay queued
        heads = _fitting_in_order(heads, fits)
    running = claims.running_per_owner({job.owner_id for job in heads}, now=now)
    picked = _pick(claims, heads, running, slots, fair_share, max_running_per_user, now)
    until = database_now(session) + timedelta(seconds=lease_seconds)
    if hold:
        ids = [job.id for job in picked]
        return claims.hold(ids, replica_id=replica_id, lease_until=until, now=now)
    started = claims.start([job.id for job in picked], replica_id=replica_id, lease_until=until)
    for job in started:
        signals.changed(session, job.id, JobStatus.RUNNING.value)
    if groups := {job.session_id for job in started if job.session_id is not None}:
        JobGroupRepository(session).activate(groups, database_now(session))
    return started


def claim_plain(
    claims: ClaimTransaction,
    *,
    replica_id: str,
    slots: int,
    lease_seconds: float,
    fair_share: FairShare,
    signals: Signals,
    max_running_per_user: int | None = None,
    fits: Callable[[str | None], bool] | None = None,
) -> list[StoredJob] | None:
    """:func:`claim_jobs` (not held) on the plain DB-API path, in ``claims``' transaction.

    None, with nothing changed or picked, when the queue's heads include a job of a session
    or batch: :func:`claim_jobs` claims then (their groups' ends and clocks are its own).
    """
    if slots <= 0:
        return []
    heads = claims.queued_heads(per_owner=slots)
    if not heads:
        return []
    if any(job.session_id is not None for job in heads):
        return None
    if fits is not None:
        heads = _fitting_in_order(heads, fits)
    running = claims.running_per_owner({job.owner_id for job in heads})
    picked = _pick(claims, heads, running, slots, fair_share, max_running_per_user, None)
    ids = [job.id for job in picked]
    return claims.start(
        ids, replica_id=replica_id, lease_seconds=lease_seconds, signal_sender=signals.sender
    )


def start_held(
    session: Session, job_id: str, *, replica_id: str, signals: Signals
) -> StoredJob | None:
    """A held job, placed now, becomes RUNNING; None if this replica holds it no more."""
    started = JobClaims(session).start_held(job_id, replica_id=replica_id)
    if started is None:
        return None
    signals.changed(session, job_id, JobStatus.RUNNING.value)
    if started.session_id is not None:
        JobGroupRepository(session).activate({started.session_id}, database_now(session))
    return started


def _without_ended_groups(
    session: Session, heads: list[QueuedJob], signals: Signals, ended: list[str] | None
) -> list[QueuedJob]:
    """End the heads whose group may start no more jobs; the others."""
    group_ids = {job.session_id for job in heads if job.session_id is not None}
    gone = JobGroupRepository(session).ended_among(group_ids, database_now(session))
    if not gone:
        return heads
    jobs = JobRepository(session)
    for job in heads:
        group = gone.get(job.session_id or "")
        if group is None:
            continue
        if group.cancelled_at is not None:
            reason, message = JobReason.CANCELLED_BY_USER, f"its {group.mode} was cancelled"
        else:
            reason = JobReason.SESSION_ENDED
            message = f"its {group.mode} reached its max_time of {group.max_time} s first"
        if jobs.cancel_queued(job.id, message, reason=reason) is not None:
            signals.changed(session, job.id, JobStatus.CANCELLED.value)
            if ended is not None:
                ended.append(job.id)
    return [job for job in heads if job.session_id not in gone]


def _fitting_in_order(
    heads: list[QueuedJob], fits: Callable[[str | None], bool]
) -> list[QueuedJob]:
    """The heads the executor has room for now; a batch's job does not overtake an earlier
    one of the same batch that has to wait."""
    kept: list[QueuedJob] = []
    held: set[str] = set()
    for job in heads:  # oldest first
        if job.session_id is not None and job.session_id in held:
            continue
        if fits(job.resources):
            kept.append(job)
        elif job.session_id is not None:
            held.add(job.session_id)
    return kept


def _pick(
    claims: _Claims,
    heads: list[QueuedJob],
    running: Counter[int],
    slots: int,
    fair_share: FairShare,
    cap: int | None,
    now: datetime | None,
) -> list[QueuedJob]:
    """Fair share's picks among ``heads``, locked; again among the rest for those that another
    replica is claiming this instant; within ``cap`` counted under the users' row locks."""
    picked: list[QueuedJob] = []
    for _ in range(LOCK_ROUNDS):
        wanted = fair_share.pick(heads, running, slots - len(picked), max_running_per_owner=cap)
        if not wanted:
            break
        locked = claims.lock_queued([job.id for job in wanted], now=now)
        picked += locked
        running.update(job.owner_id for job in locked)
        if len(locked) == len(wanted):
            break
        tried = {job.id for job in wanted}
        heads = [job for job in heads if job.id not in tried]
    if cap is not None and picked:
        picked = _within_cap(claims, picked, cap, now)
    return picked


def _within_cap(
    claims: _Claims, picked: list[QueuedJob], cap: int, now: datetime | None
) -> list[QueuedJob]:
    """Recount under the users' row locks: another replica may have started their jobs."""
    owners = {job.owner_id for job in picked}
    claims.lock_owners(owners)
    running: Counter[int] = claims.running_per_owner(owners, now=now)
    kept = []
    for job in picked:
        if running[job.owner_id] < cap:
            running[job.owner_id] += 1
            kept.append(job)
    return kept
