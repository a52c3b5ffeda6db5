"""Claiming queued jobs for one replica, safely beside any number of others.

One transaction: each user's oldest queued jobs are read, those no other replica is claiming
this instant are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), fair share picks among
them by the RUNNING jobs each user has on *every* replica, and the picked ones become RUNNING
here with a lease. A cap on running jobs per user is checked again under a lock on the user's
row, so two replicas claiming at once cannot both take a user's last free place.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy.orm import Session

from qruntime.domain.job import JobStatus
from qruntime.service.fair_share import FairShare
from qruntime.storage import StoredJob
from qruntime.storage.clock import database_now
from qruntime.storage.job_claims import JobClaims, QueuedJob
from qruntime.storage.signals import Signals


def claim_jobs(
    session: Session,
    *,
    replica_id: str,
    slots: int,
    lease_seconds: float,
    fair_share: FairShare,
    signals: Signals,
    max_running_per_user: int | None = None,
) -> list[StoredJob]:
    """Up to ``slots`` queued jobs, now RUNNING on ``replica_id``; commit to keep them."""
    if slots <= 0:
        return []
    claims = JobClaims(session)
    heads = claims.queued_heads(per_owner=slots)
    if not heads:
        return []
    running = claims.running_per_owner({job.owner_id for job in heads})
    free = claims.lock_queued([job.id for job in heads])
    picked = fair_share.pick(free, running, slots, max_running_per_owner=max_running_per_user)
    if max_running_per_user is not None and picked:
        picked = _within_cap(claims, picked, max_running_per_user)
    until = database_now(session) + timedelta(seconds=lease_seconds)
    started = claims.start([job.id for job in picked], replica_id=replica_id, lease_until=until)
    for job in started:
        signals.changed(session, job.id, JobStatus.RUNNING.value)
    return started


def _within_cap(claims: JobClaims, picked: list[QueuedJob], cap: int) -> list[QueuedJob]:
    """Recount under the users' row locks: another replica may have started their jobs."""
    owners = {job.owner_id for job in picked}
    claims.lock_owners(owners)
    running: Counter[int] = claims.running_per_owner(owners)
    kept = []
    for job in picked:
        if running[job.owner_id] < cap:
            running[job.owner_id] += 1
            kept.append(job)
    return kept
