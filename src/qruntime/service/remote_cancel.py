"""Cancelling a job that another replica runs: a request stored on the job, a signal to its
owner, and a wait for the owner (or, if it is gone, whoever takes the job over) to end it."""

from __future__ import annotations

import asyncio

from qruntime.domain.errors import NotFoundError
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, JobRepository, StoredJob
from qruntime.storage.job_claims import JobClaims
from qruntime.storage.signals import Signals

#: While waiting, read the job again at least this often, even if no signal came.
RECHECK_SECONDS = 1.0


def request_cancel(db: Database, signals: Signals, job_id: str) -> StoredJob | None:
    """Store the request (so an owner that misses the signal still sees it at its next
    heartbeat) and signal the owner; None if the job is not running any more."""
    with db.session() as session:
        job = JobClaims(session).request_cancel(job_id)
        if job is not None and job.owner_replica is not None:
            signals.cancel(session, job_id, job.owner_replica)
        return job


async def wait_until_ended(db: Database, hub: StreamHub, job_id: str, timeout: float) -> StoredJob:
    """The job once it has ended, or as it is after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    watch = hub.watch(job_id)
    while True:
        watch.snapshot()
        job = await asyncio.to_thread(stored_job, db, job_id)
        remaining = deadline - loop.time()
        if job.status.is_terminal() or remaining <= 0:
            return job
        await watch.wait(min(remaining, RECHECK_SECONDS))


def stored_job(db: Database, job_id: str) -> StoredJob:
    """The job as stored now; NotFoundError if there is none."""
    with db.session(readonly=True) as session:
        job = JobRepository(session).get(job_id)
    if job is None:
        raise NotFoundError("job", job_id)
    return job
