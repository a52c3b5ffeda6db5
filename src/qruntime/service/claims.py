"""Claiming queued jobs for one replica, safely beside any number of others.

One transaction: each user's oldest queued jobs are read, fair share picks among them by the
RUNNING jobs each user has on *every* replica, the picked ones are locked unless another
replica is claiming them this instant (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: skipped, not
waited for; fair share then picks again among the rest), and they become RUNNING here with a
lease. Only what is picked is locked, so a claim costs the same with ten or ten thousand jobs
waiting. A cap on running jobs per user is checked again under a lock on the user's
row, so two replicas claiming at once cannot both take a user's last free place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from qruntime.domain.job import JobStatus
from qruntime.service.fair_share import FairShare
from qruntime.storage import StoredJob
from qruntime.storage.clock import database_now
from qruntime.storage.job_claims import JobClaims, QueuedJob
from qruntime.storage.signals import Signals

#: Rounds of picking again when another replica holds what was picked.
LOCK_ROUNDS = 3


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
) -> list[StoredJob]:
    """Up to ``slots`` queued jobs, now RUNNING on ``replica_id``; commit to keep them."""
    if slots <= 0:
        return []
    claims = JobClaims(session)
    heads = claims.queued_heads(per_owner=slots)
    if not heads:
        return []
    if fits is not None:  # the executor has no room for the others now: they stay queued
        heads = [job for job in heads if fits(job.resources)]
    running = claims.running_per_owner({job.owner_id for job in heads})
    picked: list[QueuedJob] = []
    for _ in range(LOCK_ROUNDS):
        wanted = fair_share.pick(
            heads, running, slots - len(picked), max_running_per_owner=max_running_per_user
        )
        if not wanted:
            break
        locked = claims.lock_queued([job.id for job in wanted])
        picked += locked
        running.update(job.owner_id for job in locked)
        if len(locked) == len(wanted):
            break
        tried = {job.id for job in wanted}
        heads = [job for job in heads if job.id not in tried]
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
