"""A job submitted while a slot is free is claimed in the submit's own thread and started,
with no dispatcher wake-up or scan on its path; the slots hold with both ways of claiming."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from storage_support import BACKENDS, add_job, fresh_database, make_user

from qruntime.domain.events import JobEvent, ResultEvent
from qruntime.domain.job import JobStatus
from qruntime.execution import Executor, JobRequest
from qruntime.service.scheduler import Scheduler
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, JobRepository, StoredUser


class Gate(Executor):
    """Runs each job until the test opens its gate; notes how often the dispatcher scanned."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}
        self.scans = 0
        self.gates: dict[str, asyncio.Event] = {}

    async def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:  # type: ignore[override]
        self.started[request.job_id] = self.scans
        gate = self.gates.setdefault(request.job_id, asyncio.Event())
        await gate.wait()
        yield ResultEvent('"ok"')

    async def cancel(self, job_id: str) -> bool:
        return False


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


@asynccontextmanager
async def scheduler_on(database: Database, executor: Gate, slots: int) -> AsyncIterator[Scheduler]:
    """Started, its dispatcher's scans counted; stopped at the end."""
    scheduler = Scheduler(
        database,
        executor,
        StreamHub(),
        replica_id="r-1",
        max_concurrent_jobs=slots,
        max_log_bytes=1024,
        lease_seconds=60,
        cancel_wait_seconds=1,
    )
    dispatch = scheduler._dispatch

    async def counted() -> None:
        executor.scans += 1
        await dispatch()

    scheduler._dispatch = counted  # type: ignore[method-assign]
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


def submit(database: Database, owner: StoredUser, job_id: str) -> None:
    with database.session() as session:
        add_job(session, owner, job_id)


def submit_and_claim(
    database: Database, owner: StoredUser, scheduler: Scheduler, job_id: str
) -> None:
    """As the server's submit does: the insert, its own claim, else the dispatcher woken."""
    submit(database, owner, job_id)
    if not scheduler.claim_after_submit():
        scheduler.wake()


def status(database: Database, job_id: str) -> JobStatus:
    with database.session(readonly=True) as session:
        job = JobRepository(session).get(job_id)
        assert job is not None
        return job.status


async def eventually(check, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


async def test_a_job_starts_from_its_submit_without_the_dispatcher_s_scan(
    database: Database,
) -> None:
    owner = make_user(database)
    executor = Gate()
    async with scheduler_on(database, executor, slots=1) as scheduler:
        await eventually(lambda: executor.scans == 1, "the start's scan")
        await asyncio.sleep(0.05)  # that scan is over

        def submitted(job_id: str) -> bool:
            submit(database, owner, job_id)
            return scheduler.claim_after_submit()

        assert await asyncio.to_thread(submitted, "j-1")
        await eventually(lambda: "j-1" in executor.started, "j-1 started")
        assert executor.started["j-1"] == 1 and executor.scans == 1  # no scan for it
        assert status(database, "j-1") is JobStatus.RUNNING

        # The one slot is taken: the next job waits queued, and its submit claims nothing.
        assert not await asyncio.to_thread(submitted, "j-2")
        await asyncio.sleep(0.1)
        assert "j-2" not in executor.started and status(database, "j-2") is JobStatus.QUEUED
        executor.gates.setdefault("j-1", asyncio.Event()).set()
        await eventually(lambda: "j-2" in executor.started, "j-2 started once j-1 ended")
        assert status(database, "j-1") is JobStatus.DONE
        executor.gates.setdefault("j-2", asyncio.Event()).set()
        await eventually(lambda: status(database, "j-2") is JobStatus.DONE, "j-2 done")


async def test_submits_and_the_dispatcher_together_never_pass_the_slots(
    database: Database,
) -> None:
    owner = make_user(database)
    executor = Gate()
    async with scheduler_on(database, executor, slots=3) as scheduler:
        await asyncio.gather(
            *(
                asyncio.to_thread(submit_and_claim, database, owner, scheduler, f"j-{n}")
                for n in range(10)
            )
        )
        for _ in range(5):  # the dispatcher scans as well, beside the submits' claims
            scheduler.wake()
            await asyncio.sleep(0.02)
        await eventually(lambda: len(executor.started) == 3, "three started")
        await asyncio.sleep(0.1)
        assert len(executor.started) == 3
        assert len(scheduler.running_job_ids) == 3
        for gate in list(executor.gates.values()):
            gate.set()
        await eventually(lambda: len(executor.started) == 6, "the next three")
        assert len(scheduler.running_job_ids) == 3


async def test_a_job_submitted_while_another_submit_claims_starts_without_the_idle_rescan(
    database: Database,
) -> None:
    """Its submit finds every slot held by a claim in flight (which read the queue before this
    job was inserted) and so does the dispatcher it wakes: the claim that gave unused slots
    back must look again, or the job waits for the 5 s idle rescan (review of c21bbf5)."""
    owner = make_user(database)
    executor = Gate()
    async with scheduler_on(database, executor, slots=2) as scheduler:
        await eventually(lambda: executor.scans == 1, "the start's scan")
        await asyncio.sleep(0.05)
        real_claim = scheduler._claim
        in_claim, release = threading.Event(), threading.Event()
        first = [True]

        def slow_claim(slots, ended):  # type: ignore[no-untyped-def]
            claimed = real_claim(slots, ended)
            if first[0]:  # the first submit's claim, which read the queue before j-b existed
                first[0] = False
                in_claim.set()
                release.wait(5)
            return claimed

        scheduler._claim = slow_claim  # type: ignore[method-assign]

        a = asyncio.ensure_future(
            asyncio.to_thread(submit_and_claim, database, owner, scheduler, "j-a")
        )
        assert await asyncio.to_thread(in_claim.wait, 5)
        await asyncio.to_thread(
            submit_and_claim, database, owner, scheduler, "j-b"
        )  # no free slot now: it wakes the dispatcher
        await asyncio.sleep(0.2)  # the dispatcher looked (nothing free) and sleeps again
        release.set()
        await a
        for _ in range(150):  # 1.5 s, well under the idle rescan's 5 s
            if "j-b" in executor.started:
                break
            await asyncio.sleep(0.01)
        assert "j-a" in executor.started
        assert "j-b" in executor.started, f"j-b is {status(database, 'j-b')} with a free slot"
        for gate in list(executor.gates.values()):
            gate.set()


async def test_a_job_claimed_as_the_server_stops_goes_back_to_the_queue(
    database: Database,
) -> None:
    """A submit's claim that commits after stop() began: its job never runs here, so it goes
    back to QUEUED (to run after the restart or on another replica), not RUNNING until its
    lease runs out and then INTERRUPTED unrun (review of c21bbf5)."""
    owner = make_user(database)
    executor = Gate()
    scheduler = Scheduler(
        database,
        executor,
        StreamHub(),
        replica_id="r-1",
        max_concurrent_jobs=2,
        max_log_bytes=1024,
        lease_seconds=60,
        cancel_wait_seconds=1,
    )
    await scheduler.start()
    await asyncio.sleep(0.2)
    real_claim = scheduler._claim
    in_claim, release = threading.Event(), threading.Event()

    def slow_claim(slots, ended):  # type: ignore[no-untyped-def]
        in_claim.set()
        release.wait(5)  # the claim's transaction is about to run when stop() comes
        return real_claim(slots, ended)

    scheduler._claim = slow_claim  # type: ignore[method-assign]

    a = asyncio.ensure_future(
        asyncio.to_thread(submit_and_claim, database, owner, scheduler, "j-a")
    )
    assert await asyncio.to_thread(in_claim.wait, 5)
    await scheduler.stop()
    release.set()
    await a
    await eventually(lambda: status(database, "j-a") is JobStatus.QUEUED, "j-a queued again")
    assert "j-a" not in executor.started
    with database.session(readonly=True) as session:
        job = JobRepository(session).get("j-a")
        assert job is not None and job.started_at is None
