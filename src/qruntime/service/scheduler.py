"""Runs queued jobs through the executor: fair share, a concurrency limit, cancellation, and
recovery at start; each job's events are stored (then readers woken) by a JobRecorder.

One scheduler per replica. It claims jobs from the shared queue (:mod:`.claims`), runs them
with this replica as their owner, follows jobs it adopts from replicas that are gone
(:mod:`.leases` decides which), and stops a job it runs when anyone asks, here or through
another replica (:mod:`.remote_cancel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

from qruntime.domain.errors import InvalidStateError, NotFoundError
from qruntime.domain.events import CancelledEvent, ErrorEvent, JobEvent, TerminalEvent
from qruntime.domain.job import JobReason, JobStatus
from qruntime.execution import Executor, JobRequest
from qruntime.service.claims import claim_jobs
from qruntime.service.event_batches import batched
from qruntime.service.fair_share import FairShare
from qruntime.service.job_recorder import JobRecorder
from qruntime.service.remote_cancel import request_cancel, wait_until_ended
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, JobRepository, StoredJob
from qruntime.storage.signals import Signals

log = logging.getLogger("qruntime.scheduler")

INTERRUPTED_AT_START = (
    "the server stopped while this job was running, so it did not finish; "
    "its interim results up to that point are kept"
)
INTERRUPTED_AT_SHUTDOWN = "the server shut down while this job was running, so it did not finish"
#: Safety net: look at the queue this often even if nobody woke the scheduler.
IDLE_RESCAN_SECONDS = 5.0
#: How long a job claimed this instant may take to show up as running here.
CLAIM_SETTLE_SECONDS = 1.0


@dataclass
class _Running:
    job: StoredJob
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    #: The executor reported the job's end; its outcome is being (or has been) stored.
    ended: bool = False
    #: Another replica took the job over: nothing more is recorded from here.
    lease_lost: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Scheduler:
    """Lives on the server's event loop; workers are spawned from that loop's thread."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        hub: StreamHub,
        *,
        replica_id: str,
        max_concurrent_jobs: int,
        max_log_bytes: int,
        lease_seconds: float,
        cancel_wait_seconds: float,
        max_running_jobs_per_user: int | None = None,
    ):
        """``cancel_wait_seconds``: how long a cancel waits for another replica to stop the
        job (long enough for a takeover when that replica is gone)."""
        self._db = db
        self._executor = executor
        self._hub = hub
        self.replica_id = replica_id
        self._max_concurrent = max_concurrent_jobs
        self._lease_seconds = lease_seconds
        self._cancel_wait = cancel_wait_seconds
        self._max_running_per_user = max_running_jobs_per_user
        self._signals = Signals(replica_id)
        self._recorder = JobRecorder(db, hub, max_log_bytes=max_log_bytes, sender=replica_id)
        self._running: dict[str, _Running] = {}
        self._fair_share = FairShare()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def start(self, *, interrupt_leftovers: bool) -> list[str]:
        """Start dispatching. ``interrupt_leftovers`` (a database only this server can use)
        first marks every job a dead server left RUNNING as interrupted; with replicas, leases
        decide instead."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        interrupted = []
        if interrupt_leftovers:
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
        """Jobs this replica runs or follows: the ones whose leases it renews."""
        return list(self._running)

    @property
    def can_adopt(self) -> bool:
        return self._executor.can_adopt

    async def cancel(self, job_id: str) -> StoredJob:
        """Stop a queued or running job; it ends ``CANCELLED`` / ``CANCELLED BY USER``.

        A job running on another replica is asked to stop there; this waits (up to
        ``cancel_wait_seconds``) for it to end and returns the job as it is then.
        """
        loop = asyncio.get_running_loop()
        settle_until = loop.time() + CLAIM_SETTLE_SECONDS
        while True:
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
            mine = job.owner_replica == self.replica_id
            if job.status is JobStatus.RUNNING and (not mine or loop.time() > settle_until):
                await asyncio.to_thread(request_cancel, self._db, self._signals, job_id)
                return await wait_until_ended(self._db, self._hub, job_id, self._cancel_wait)
            await asyncio.sleep(0.02)  # claimed this instant: it is about to appear as running
        return await asyncio.to_thread(self._get, job_id)

    def cancel_here(self, job_id: str) -> None:
        """Someone asked (through another replica) to stop a job this replica owns."""
        running = self._running.get(job_id)
        if running is not None and not running.cancel_requested:
            self._spawn(self._cancel_running(running), f"qruntime-cancel-{job_id}")
        elif running is None:  # claimed this instant, or already gone: check again shortly
            self._spawn(self._cancel_when_running(job_id), f"qruntime-cancel-{job_id}")

    def release(self, job_ids: Collection[str]) -> None:
        """Our leases on these jobs were not renewed: stop them unless they just ended.

        Another replica found the lease run out and took the job over (ended or adopted it),
        so nothing more is recorded from here; the worker is stopped.
        """
        for job_id in job_ids:
            running = self._running.get(job_id)
            if running is None or running.ended or running.lease_lost:
                continue
            log.warning("lost the lease on job %s to another replica; stopping it here", job_id)
            running.lease_lost = True
            if running.task is not None:
                running.task.cancel()

    async def adopt(self, job: StoredJob, *, previous_owner: str, gone: TerminalEvent) -> None:
        """Follow a job this replica just took over from ``previous_owner``; ``gone`` is its
        outcome if the executor cannot follow it after all."""
        events = await self._executor.adopt(self._request(job), recorded_seq=job.interim_count)
        if events is None:
            await self._finish_quietly(job.id, gone)
            self._hub.notify(job.id)
            return
        log.info("adopted job %s from replica %s", job.id, previous_owner)
        running = _Running(job, cancel_requested=job.cancel_requested_at is not None)
        self._start(running, events)
        if running.cancel_requested:
            self._spawn(self._cancel_running(running), f"qruntime-cancel-{job.id}")

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
        for side_task in list(self._side_tasks):
            side_task.cancel()
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
        for job in await asyncio.to_thread(self._claim, slots):
            running = _Running(job)
            if job.cancel_requested_at is not None:
                running.cancel_requested = True
            self._start(running, None)

    def _start(self, running: _Running, events: AsyncIterator[JobEvent] | None) -> None:
        """Follow a job this replica owns now: ``events`` of an adopted one, else run it."""
        self._running[running.job.id] = running
        running.task = asyncio.create_task(
            self._run(running, events), name=f"qruntime-job-{running.job.id}"
        )

    async def _run(self, running: _Running, events: AsyncIterator[JobEvent] | None) -> None:
        job = running.job
        try:
            if events is None:
                self._hub.notify(job.id)  # it is RUNNING now
                if running.cancel_requested:
                    raise asyncio.CancelledError
                events = self._executor.run(self._request(job))
            async for batch in batched(events):
                if batch[0].terminal:
                    running.ended = True
                await self._recorder.record(job.id, batch)
        except asyncio.CancelledError:
            await self._record_stop(running)
        except Exception as exc:
            log.exception("job %s failed in the scheduler", job.id)
            await self._finish_quietly(
                job.id, ErrorEvent(f"internal error: {exc}", JobReason.PROCESS_CRASHED)
            )
        finally:
            if running.lease_lost:
                self._recorder.discard(job.id)
            else:
                with contextlib.suppress(Exception):  # the job's outcome is already stored
                    await asyncio.shield(self._recorder.close(job.id))
            self._running.pop(job.id, None)
            running.finished.set()
            self._hub.notify(job.id)
            self._hub.forget(job.id)
            if not self._stopping and self._wakeup is not None:
                self._wakeup.set()

    def _request(self, job: StoredJob) -> JobRequest:
        return JobRequest(
            job_id=job.id,
            source=job.source,
            backend_name=job.backend,
            inputs=job.inputs,
            max_execution_time=job.max_execution_time,
            program_name=job.program_name,
        )

    async def _record_stop(self, running: _Running) -> None:
        if running.lease_lost:
            return  # the replica that took the job over records its end
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

    async def _cancel_when_running(self, job_id: str) -> None:
        deadline = asyncio.get_running_loop().time() + CLAIM_SETTLE_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            running = self._running.get(job_id)
            if running is not None:
                await self._cancel_running(running)
                return
            await asyncio.sleep(0.02)

    async def _finish_quietly(self, job_id: str, outcome: TerminalEvent) -> None:
        try:
            await self._recorder.record_outcome(job_id, outcome)
        except Exception:
            log.exception("could not record the end of job %s", job_id)

    def _spawn(self, work: Coroutine[Any, Any, object], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._side_tasks.add(task)  # a task nobody references may be collected mid-flight
        task.add_done_callback(self._side_tasks.discard)

    # Database work, run in worker threads.

    def _interrupt_running(self) -> list[str]:
        with self._db.session() as session:
            interrupted = JobRepository(session).interrupt_running(INTERRUPTED_AT_START)
            for job_id in interrupted:
                self._signals.changed(session, job_id, JobStatus.ERROR.value)
            return interrupted

    def _claim(self, slots: int) -> list[StoredJob]:
        with self._db.session() as session:
            return claim_jobs(
                session,
                replica_id=self.replica_id,
                slots=slots,
                lease_seconds=self._lease_seconds,
                fair_share=self._fair_share,
                signals=self._signals,
                max_running_per_user=self._max_running_per_user,
            )

    def _get(self, job_id: str) -> StoredJob:
        with self._db.session(readonly=True) as session:
            job = JobRepository(session).get(job_id)
        if job is None:
            raise NotFoundError("job", job_id)
        return job

    def _cancel_queued(self, job_id: str) -> bool:
        with self._db.session() as session:
            jobs = JobRepository(session)
            cancelled = jobs.cancel_queued(job_id, "cancelled by request before it started")
            if cancelled is not None:
                self._signals.changed(session, job_id, JobStatus.CANCELLED.value)
            return cancelled is not None


def _finished_message(job: StoredJob) -> str:
    reason = f" ({job.reason})" if job.reason else ""
    return f"job {job.id!r} has already finished: {job.status}{reason}"
