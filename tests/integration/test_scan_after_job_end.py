"""A job's end wakes the dispatcher for a claim scan only while a job may be queued: after a
claim that started every queued job, and nothing queued since, the scan is skipped."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import update
from storage_support import make_user
from test_claim_after_submit import Gate, database, eventually, scheduler_on, status, submit

from qruntime.domain.job import JobStatus
from qruntime.storage import Database
from qruntime.storage.models import JOBS, utcnow

__all__ = ["database"]  # the fixture, shared


async def test_a_job_ending_with_the_queue_known_empty_starts_no_scan(database: Database) -> None:
    owner = make_user(database)
    executor = Gate()
    async with scheduler_on(database, executor, slots=2) as scheduler:
        await eventually(lambda: executor.scans == 1, "the start's scan")
        await asyncio.sleep(0.05)

        def submitted(job_id: str) -> bool:
            submit(database, owner, job_id)
            return scheduler.claim_after_submit()

        for job_id in ("j-1", "j-2"):
            assert await asyncio.to_thread(submitted, job_id)
            await eventually(lambda job_id=job_id: job_id in executor.started, "started")
            executor.gates.setdefault(job_id, asyncio.Event()).set()
            await eventually(
                lambda job_id=job_id: status(database, job_id) is JobStatus.DONE, "done"
            )
            await asyncio.sleep(0.1)
            assert executor.scans == 1  # the submit's claim left the queue empty: no scan


async def test_a_job_ending_beside_a_queued_job_no_claim_could_take_scans(
    database: Database,
) -> None:
    """A job another replica holds is no head of the queue, yet queued: once that hold runs
    out, the next job end here must look, not leave it to the 5 s idle rescan."""
    owner = make_user(database)
    executor = Gate()
    submit(database, owner, "j-held")
    with database.session() as session:
        session.execute(
            update(JOBS)
            .where(JOBS.c.id == "j-held")
            .values(owner_replica="r-2", lease_expires_at=utcnow() + dt.timedelta(seconds=0.5))
        )
    async with scheduler_on(database, executor, slots=2) as scheduler:
        await eventually(lambda: executor.scans == 1, "the start's scan")
        await asyncio.sleep(0.05)
        submit(database, owner, "j-1")
        assert await asyncio.to_thread(scheduler.claim_after_submit)
        await eventually(lambda: "j-1" in executor.started, "j-1 started")
        await asyncio.sleep(0.6)  # the other replica's hold on j-held ran out
        assert status(database, "j-held") is JobStatus.QUEUED
        executor.gates.setdefault("j-1", asyncio.Event()).set()
        for _ in range(150):  # 1.5 s, well under the idle rescan's 5 s
            if "j-held" in executor.started:
                break
            await asyncio.sleep(0.01)
        assert "j-held" in executor.started, "the job end did not look at the queue"
        executor.gates.setdefault("j-held", asyncio.Event()).set()
        await eventually(lambda: status(database, "j-held") is JobStatus.DONE, "j-held done")
