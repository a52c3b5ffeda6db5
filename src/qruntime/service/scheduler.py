"""Runs queued jobs through the executor: fair share, a concurrency limit, cancellation, and
recovery at start; each job's events are stored (then readers woken) by a JobRecorder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

from qruntime.domain.errors import InvalidStateError, NotFoundError
from qruntime.domain.events import CancelledEvent, ErrorEvent
from qruntime.domain.job import JobReason
from qruntime.execution import Executor, JobRequest
from qruntime.service.event_batches import batched
from qruntime.service.fair_share import FairShare
from qruntime.service.job_recorder import JobRecorder
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, JobRepository, StoredJob

log = logging.getLogger("qruntime.scheduler")

INTERRUPTED_AT_START = (
    "the server stopped while this job was running, so it did not finish; "
    "its interim results up to that point are kept"
)
INTERRUPTED_AT_SHUTDOWN = "the server shut down while this job was running, so it did not finish"
#: Safety net: look at the queue this often even if nobody woke the scheduler.
IDLE_RESCAN_SECONDS = 5.0


@dataclass
class _Running:
    job: StoredJob
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Scheduler:
    """Lives on the server's event loop; workers are spawned from that loop's thread."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        hub: StreamHub,
        *,
        max_concurrent_jobs: int,
        max_log_bytes: int,
    ):
        self._db = db
        self._executor = executor
        self._hub = hub
        self._max_concurrent = max_concurrent_jobs
        self._recorder = JobRecorder(db, hub, max_log_bytes=max_log_bytes)
        self._running: dict[str, _Running] = {}
        self._fair_share = FairShare()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> list[str]:
        """Mark jobs a dead server left running as interrupted, then start dispatching."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        interrupted = await asyncio.to_thread(self._interrupt_running)
        for job_id in interrupted:
            self._hub.notify(job_id)
        if interrupted:
            log.warning(
                "marked %d job(s) left running by a previous server as INTERRUPTED",
                len(interrupted),
            )
        self._wakeup.set()  # jobs queued before this start run now
        self._warm_up = asyncio.create_task(self._executor.start(), name="qruntime-warm-up")
        self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="qruntime-dispatch")
        return interrupted

    def wake(self) -> None:
        """Tell the dispatcher to look at the queue; safe to call from any thread."""
        if self._loop is None or self._wakeup is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            self._loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def running_job_ids(self) -> list[str]:
        return list(self._running)

    async def cancel(self, job_id: str) -> StoredJob:
        """Stop a queued or running job; it ends ``CANCELLED`` / ``CANCELLED BY USER``."""
        for _ in range(50):
            running = self._running.get(job_id)
            if running is not None:
                await self._cancel_running(running)
                break
            if await asyncio.to_thread(self._cancel_queued, job_id):
                self._hub.notify(job_id)
                break
            job = await asyncio.to_thread(self._get, job_id)
            if job.status.is_terminal():
                raise InvalidStateError(_finished_message(job))
            await asyncio.sleep(0.02)  # claimed this instant: it is about to appear as running
        else:
            raise InvalidStateError(f"job {job_id!r} is running in another server process")
        return await asyncio.to_thread(self._get, job_id)

    async def stop(self) -> None:
        """Stop dispatching; running jobs are killed and recorded as interrupted."""
        self._stopping = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._warm_up is not None:
            self._warm_up.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warm_up
        tasks = [r.task for r in self._running.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._executor.aclose()

    async def _dispatch_forever(self) -> None:
        assert self._wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), IDLE_RESCAN_SECONDS)
            self._wakeup.clear()
            try:
                await self._dispatch()
            except Exception:  # the database may be briefly unavailable; try again later
                log.exception("could not dispatch queued jobs")

    async def _dispatch(self) -> None:
        slots = self._max_concurrent - len(self._running)
        if slots <= 0:
            return
        queued = [j for j in await asyncio.to_thread(self._queued) if j.id not in self._running]
        running_per_owner = Counter(r.job.owner_id for r in self._running.values())
        for job in self._fair_share.pick(queued, running_per_owner, slots):
            running = _Running(job)
            self._running[job.id] = running
            running.task = asyncio.create_task(self._run(running), name=f"qruntime-job-{job.id}")

    async def _run(self, running: _Running) -> None:
        job = running.job
        try:
            if await asyncio.to_thread(self._mark_running, job.id) is None:
                return  # cancelled or taken between the scan and the claim
            self._hub.notify(job.id)
            if running.cancel_requested:
                raise asyncio.CancelledError
            request = JobRequest(
                job_id=job.id,
                source=job.source,
                backend_name=job.backend,
                inputs=job.inputs,
                max_execution_time=job.max_execution_time,
                program_name=job.program_name,
            )
            async for batch in batched(self._executor.run(request)):
                await self._recorder.record(job.id, batch)
        except asyncio.CancelledError:
            await self._record_stop(running)
        except Exception as exc:
            log.exception("job %s failed in the scheduler", job.id)
            await self._finish_quietly(
                job.id, ErrorEvent(f"internal error: {exc}", JobReason.PROCESS_CRASHED)
            )
        finally:
            with contextlib.suppress(Exception):  # the job's outcome is already stored
                await asyncio.shield(self._recorder.close(job.id))
            self._running.pop(job.id, None)
            running.finished.set()
            self._hub.notify(job.id)
            self._hub.forget(job.id)
            if not self._stopping and self._wakeup is not None:
                self._wakeup.set()

    async def _record_stop(self, running: _Running) -> None:
        if running.cancel_requested:
            outcome: CancelledEvent | ErrorEvent = CancelledEvent(
                JobReason.CANCELLED_BY_USER, "cancelled by request"
            )
        else:
            outcome = ErrorEvent(INTERRUPTED_AT_SHUTDOWN, JobReason.INTERRUPTED)
        await asyncio.shield(self._finish_quietly(running.job.id, outcome))

    async def _cancel_running(self, running: _Running) -> None:
        """Before its process exists, ``_run`` sees the flag; after, the executor stops it.

        The job task is never cancelled from here, so no event write is cut off midway.
        """
        running.cancel_requested = True
        while not running.finished.is_set():
            if await self._executor.cancel(running.job.id):
                break
            await asyncio.sleep(0.02)
        await running.finished.wait()

    async def _finish_quietly(self, job_id: str, outcome: CancelledEvent | ErrorEvent) -> None:
        try:
            await self._recorder.record_outcome(job_id, outcome)
        except Exception:
            log.exception("could not record the end of job %s", job_id)

    # Database work, run in worker threads.

    def _interrupt_running(self) -> list[str]:
        with self._db.session() as session:
            return JobRepository(session).interrupt_running(INTERRUPTED_AT_START)

    def _queued(self) -> list[StoredJob]:
        with self._db.session(readonly=True) as session:
            return JobRepository(session).queued()

    def _get(self, job_id: str) -> StoredJob:
        with self._db.session(readonly=True) as session:
            job = JobRepository(session).get(job_id)
        if job is None:
            raise NotFoundError("job", job_id)
        return job

    def _mark_running(self, job_id: str) -> StoredJob | None:
        with self._db.session() as session:
            return JobRepository(session).mark_running(job_id)

    def _cancel_queued(self, job_id: str) -> bool:
        with self._db.session() as session:
            jobs = JobRepository(session)
            return jobs.cancel_queued(job_id, "cancelled by request before it started") is not None


def _finished_message(job: StoredJob) -> str:
    reason = f" ({job.reason})" if job.reason else ""
    return f"job {job.id!r} has already finished: {job.status}{reason}"
