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
import json
import logging
import threading
from collections.abc import AsyncIterator, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

from qruntime.domain.errors import InvalidStateError
from qruntime.domain.events import CancelledEvent, ErrorEvent, JobEvent, TerminalEvent
from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.resources import JobResources
from qruntime.execution import Executor, JobRequest
from qruntime.execution.executor import ExecutorUnavailable
from qruntime.service.event_batches import BATCH_SHAPE, MAX_INTERVAL, batched
from qruntime.service.job_recorder import JobRecorder
from qruntime.service.job_slots import JobSlots
from qruntime.service.queue_work import QueueWork
from qruntime.service.remote_cancel import request_cancel, stored_job, wait_until_ended
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, StoredJob
from qruntime.storage.signals import Signals

log = logging.getLogger("qruntime.scheduler")

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
    #: Claimed but QUEUED still: it starts once the executor placed it.
    held: bool = False
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
        self._cancel_wait = cancel_wait_seconds
        self._signals = Signals(replica_id)
        self._recorder = JobRecorder(db, hub, max_log_bytes=max_log_bytes, sender=replica_id)
        self._queue_work = QueueWork(
            db,
            executor,
            self._signals,
            replica_id=replica_id,
            lease_seconds=lease_seconds,
            max_running_per_user=max_running_jobs_per_user,
        )
        self._queue = self._queue_work.queue
        self._running: dict[str, _Running] = {}
        self._slots = JobSlots(max_concurrent_jobs, self._running)
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def start(self) -> None:
        """Start dispatching. Jobs a dead server left RUNNING are the lease keeper's
        (:mod:`.leases`), on SQLite as with replicas: one recovery, not two."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        self._wakeup.set()  # jobs queued before this start run now
        self._warm_up = asyncio.create_task(self._executor.start(), name="qruntime-warm-up")
        self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="qruntime-dispatch")

    def wake(self) -> None:
        """Tell the dispatcher to look at the queue; safe to call from any thread."""
        self._queue.changed()
        if self._loop is None or self._wakeup is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def claim_after_submit(self) -> bool:
        """In a submit's worker thread, right after its insert: claim what the free slots can
        run now, as the dispatcher would (same fair share and caps), and start it on the loop,
        with no dispatcher wake-up and scan on the job's path. False where it did not claim
        (no free slot, the executor down or placing jobs itself): wake the dispatcher then."""
        self._queue.changed()  # the submit's job is in the queue now
        loop = self._loop
        if loop is None or self._stopping or self._executor.places_before_start:
            return False
        if threading.get_ident() == self._loop_thread:  # never the loop's thread: it blocks
            return False
        if self.waiting_reason() is not None:
            return False
        slots = self._slots.take_free()
        if slots <= 0:  # a claim in flight may have missed the job: the dispatcher looks again
            return False
        ended: list[str] = []
        try:
            claimed = self._claim(slots, ended)
        except Exception:
            self._slots.give_back(slots)
            log.exception("could not claim jobs after a submit; the dispatcher will")
            return False
        try:
            loop.call_soon_threadsafe(self._take, claimed, ended, slots)
        except RuntimeError:  # the loop closed: nothing will run them here
            self._slots.give_back(slots)
            self._queue_work.unstart(claimed)
        return True

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
                await self._stop_or_wait(running)
                break
            if await asyncio.to_thread(self._queue_work.cancel_queued, job_id):
                self._hub.notify(job_id)
                break
            job = await asyncio.to_thread(stored_job, self._db, job_id)
            if job.status.is_terminal():
                raise InvalidStateError(_finished_message(job))
            mine = job.owner_replica == self.replica_id
            if job.status is JobStatus.RUNNING and (not mine or loop.time() > settle_until):
                await asyncio.to_thread(request_cancel, self._db, self._signals, job_id)
                return await wait_until_ended(self._db, self._hub, job_id, self._cancel_wait)
            await asyncio.sleep(0.02)  # claimed this instant: it is about to appear as running
        return await asyncio.to_thread(stored_job, self._db, job_id)

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
        events = await self._executor.adopt(
            self._request(job), recorded_seq=job.interim_count, started_on=job.started_on
        )
        if events is None and self._executor.jobs_outlive_replica and job.started_on is None:
            # Its replica died between claiming it and an agent starting it: no agent ever
            # ran it (an agent records its start first), so it runs now, once.
            log.info("job %s of replica %s never started; starting it", job.id, previous_owner)
            self._start(_Running(job, cancel_requested=job.cancel_requested_at is not None), None)
            return
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
        """Stop dispatching; running jobs are killed and recorded as interrupted; jobs claimed
        meanwhile that never ran go back to the queue."""
        self._stopping = True
        await asyncio.to_thread(self._queue_work.settled)
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

    def unsatisfiable(self, resources: JobResources) -> str | None:
        """Why no machine of the executor could ever run a job asking for ``resources``."""
        return self._executor.unsatisfiable(resources)

    def waiting_reason(self) -> str | None:
        """Why queued jobs do not start now (the executor is down), if they do not."""
        status = self._executor.status()
        if status.get("state") == "down":
            return f"waiting for the {status.get('kind')} executor: {status.get('reason')}"
        return None

    async def _dispatch(self) -> None:
        if self.waiting_reason() is not None:
            return
        slots = self._slots.take_free()
        if slots <= 0:
            return
        ended: list[str] = []
        claim = asyncio.ensure_future(asyncio.to_thread(self._claim, slots, ended))
        try:
            claimed = await asyncio.shield(claim)
        except asyncio.CancelledError:  # stop(): the claim goes on in its thread; see _cut_off
            claim.add_done_callback(lambda done: self._cut_off(done, ended, slots))
            raise
        except BaseException:
            self._slots.give_back(slots)
            raise
        self._take(claimed, ended, slots)

    def _cut_off(
        self, claim: asyncio.Future[list[StoredJob]], ended: list[str], slots: int
    ) -> None:
        """A claim stop() cut off ended in its thread: what it got goes back to the queue."""
        if claim.cancelled() or claim.exception() is not None:
            self._slots.give_back(slots)
            return
        self._take(claim.result(), ended, slots)

    def _take(self, claimed: list[StoredJob], ended: list[str], slots: int) -> None:
        """On the loop: run the jobs a claim got, then give back the slots it took."""
        try:
            for job_id in ended:  # of a session or batch that ended before they could start
                self._hub.notify(job_id)
            if self._stopping:  # claimed as stop() began: back to the queue, not run here
                self._queue_work.unstart(claimed)
                claimed = []
            for job in claimed:
                running = _Running(job, held=self._executor.places_before_start)
                if job.cancel_requested_at is not None:
                    running.cancel_requested = True
                self._start(running, None)
        finally:
            if self._slots.give_back(slots) and not self._stopping and self._wakeup is not None:
                self._wakeup.set()  # a submit or scan found no slot meanwhile: look again

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
                if running.held and not await self._place_held(running):
                    return
                self._hub.notify(job.id)  # it is RUNNING now
                if running.cancel_requested:
                    raise asyncio.CancelledError
                batches = self._executor.run_batches(self._request(job), BATCH_SHAPE)
            else:
                batches = batched(events, max_interval=MAX_INTERVAL)
            async for batch in batches:
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
            with contextlib.suppress(Exception):  # a place it got but never used (cancelled)
                await asyncio.shield(self._executor.unreserve(job.id))
            self._running.pop(job.id, None)
            running.finished.set()
            self._hub.notify(job.id)
            self._hub.forget(job.id)
            if not self._stopping and self._wakeup is not None and not self._queue.known_empty():
                self._wakeup.set()  # a slot is free: a queued job may start

    async def _place_held(self, running: _Running) -> bool:
        """Wait until the executor placed a held job, then start it (RUNNING from now); False
        when it does not run here: cancelled meanwhile, another replica has it now, the
        executor went away (it is queued again), or this server stops."""
        job = running.job
        try:
            if not running.cancel_requested:
                await self._executor.reserve(self._request(job))
                if not running.cancel_requested:
                    started = await asyncio.to_thread(self._queue_work.start_held, job.id)
                    if started is not None:
                        running.job, running.held = started, False
                        return True
                    running.lease_lost = True  # cancelled or taken elsewhere: not ours
        except asyncio.CancelledError:
            pass  # cancelled here, the lease lost, or the server stopping: see below
        except ExecutorUnavailable as exc:  # Ray went away while placing it
            log.warning("job %s could not be placed: %s; it waits queued", job.id, exc)
        except Exception as exc:  # placing it failed for good: no loop of claims and failures
            log.exception("job %s could not be placed", job.id)
            failed = ErrorEvent(
                f"internal error: it could not be placed: {exc}", JobReason.PROCESS_CRASHED
            )
            await asyncio.shield(self._executor.unreserve(job.id))
            await asyncio.shield(self._finish_quietly(job.id, failed))
            return False
        await asyncio.shield(self._end_hold(running))
        return False

    async def _end_hold(self, running: _Running) -> None:
        """Undo a hold that will not start: its place given up; the job cancelled if that was
        asked, else given back to the queue (unless another replica has it now)."""
        job_id = running.job.id
        await self._executor.unreserve(job_id)
        if running.lease_lost:
            return
        if running.cancel_requested:
            if await asyncio.to_thread(self._queue_work.cancel_queued, job_id):
                self._hub.notify(job_id)
        else:
            await asyncio.to_thread(self._queue_work.release_held, job_id)

    def _request(self, job: StoredJob) -> JobRequest:
        return JobRequest(
            job_id=job.id,
            source=job.source,
            backend_name=job.backend,
            inputs=job.inputs,
            max_execution_time=job.max_execution_time,
            program_name=job.program_name,
            resources=json.loads(job.resources) if job.resources else None,
        )

    async def _record_stop(self, running: _Running) -> None:
        if running.lease_lost:
            return  # the replica that took the job over records its end
        if not running.cancel_requested and self._executor.jobs_outlive_replica:
            return  # it runs on without this server; another replica adopts it
        if running.cancel_requested:
            outcome: CancelledEvent | ErrorEvent = CancelledEvent(
                JobReason.CANCELLED_BY_USER, "cancelled by request"
            )
        else:
            outcome = ErrorEvent(INTERRUPTED_AT_SHUTDOWN, JobReason.INTERRUPTED)
        await asyncio.shield(self._finish_quietly(running.job.id, outcome))

    async def _stop_or_wait(self, running: _Running) -> None:
        """Stop a job this replica runs; on a remote executor wait at most ``cancel_wait_seconds``.

        A remote executor that cannot reach the job now (its Ray cluster is down) goes on trying
        in the background; the request is stored on the job too, so a replica that adopts it
        stops it. The caller gets the job as it is then, not a call that hangs until Ray is back.
        A local job's process is killed here and now: that wait has no bound.
        """
        if not running.cancel_requested:
            running.cancel_requested = True
            self._spawn(self._cancel_running(running), f"qruntime-cancel-{running.job.id}")
        bound = self._cancel_wait if self._executor.jobs_outlive_replica else None
        try:
            await asyncio.wait_for(asyncio.shield(running.finished.wait()), bound)
        except TimeoutError:
            log.warning(
                "job %s did not stop within %g s; still trying", running.job.id, self._cancel_wait
            )
            await asyncio.to_thread(request_cancel, self._db, self._signals, running.job.id)

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

    def _claim(self, slots: int, ended: list[str]) -> list[StoredJob]:
        return self._queue_work.claim(slots, ended)


def _finished_message(job: StoredJob) -> str:
    reason = f" ({job.reason})" if job.reason else ""
    return f"job {job.id!r} has already finished: {job.status}{reason}"
