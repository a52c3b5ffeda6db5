"""The supervisor of one running worker: pumps its pipes, checks what it sends against the job's
limits, enforces the start timeout and ``max_execution_time``, stops it on request, and turns how
it ended into exactly one terminal event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from qruntime.domain.events import (
    CancelledEvent,
    ErrorEvent,
    InterimEvent,
    JobEvent,
    LogEvent,
    ResultEvent,
    TerminalEvent,
)
from qruntime.domain.job import JobReason
from qruntime.domain.text import published_json_problem
from qruntime.execution.event_queue import SINGLE_EVENTS, BatchShape, EventQueue, one_at_a_time
from qruntime.execution.exits import describe_exit
from qruntime.execution.job_users import job_processes, kill_user_processes
from qruntime.execution.limits import (
    JobLimits,
    interim_too_large,
    result_too_large,
    too_many_interims,
    unstorable,
)
from qruntime.execution.output_lines import iter_lines
from qruntime.execution.protocol import DEFAULT_MAX_FRAME_BYTES, ProtocolError, read_frame
from qruntime.execution.rate import RateLimiter
from qruntime.execution.request import JobRequest
from qruntime.execution.warm_pool import WorkerProcess
from qruntime.execution.worker_pipes import kill_group
from qruntime.execution.worker_supply import Readers

#: How long a worker may take to import, build its backend and decode inputs.
DEFAULT_START_TIMEOUT = 120.0
#: How long to wait for pipes to close after the process group is gone.
DRAIN_TIMEOUT = 5.0
#: A fast batch's results are left in the event pipe only while they fit in a quarter of a
#: pipe's default buffer (64 KiB), so that a worker publishing large results never blocks.
HOLD_BYTES = 16 * 1024
#: An interim frame's bytes besides its data: header, type, sequence number.
FRAME_BYTES = 48


class LimitExceeded(ProtocolError):
    """The worker sent more, or bigger, than the job's limits allow, or what cannot be stored."""


@dataclass(frozen=True)
class SupervisorConfig:
    start_timeout: float = DEFAULT_START_TIMEOUT
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    limits: JobLimits = field(default_factory=JobLimits)
    event_queue_size: int = 1024


@dataclass
class SupervisedJob:
    """Supervisor-side state of one running worker."""

    request: JobRequest
    process: WorkerProcess
    workdir: Path
    readers: Readers
    uid: int | None = None
    #: The worker's cgroup ``tasks`` file, where it has one: the sweep reads it, not ``/proc``.
    cgroup_tasks: str | None = None
    pumps: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    #: When each pipe's pump began waiting for input; None while it has data or is done.
    idle_since: dict[str, float | None] = field(default_factory=dict)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_event: TerminalEvent | None = None
    reported: TerminalEvent | None = None
    last_seq: int = 0
    #: Every process of the job's uid was killed after the worker ended.
    swept: bool = False

    def request_stop(self, event: TerminalEvent) -> None:
        if self.stop_event is None:
            self.stop_event = event
        self.stop.set()

    def cancel(self, message: str = "cancelled by request") -> bool:
        """Ask the job to stop as cancelled by its user; False if its process already ended."""
        if self.process.returncode is not None:
            return False
        self.request_stop(CancelledEvent(JobReason.CANCELLED_BY_USER, message))
        return True


class JobSupervisor:
    """Supervises any number of jobs, one :meth:`events` iteration each."""

    def __init__(self, config: SupervisorConfig):
        self.config = config

    def events(self, job: SupervisedJob) -> AsyncIterator[JobEvent]:
        """The job's events one at a time, as :meth:`batches` ends and closes."""
        return one_at_a_time(self.batches(job, SINGLE_EVENTS))

    async def batches(self, job: SupervisedJob, shape: BatchShape) -> AsyncIterator[list[JobEvent]]:
        """The job's events in batches of ``shape``, the terminal one last and alone; closing
        early kills the worker. Results queued while a batch fills wake no one.

        When this ends, the worker's pipes are closed; the worker's uid and directory are the
        caller's to give back (``job.swept`` says whether its uid is already clean).
        """
        queue = EventQueue(self.config.event_queue_size, shape)
        supervisor = asyncio.create_task(self._supervise(job, queue))
        try:
            while True:
                batch = await queue.take_batch()
                yield batch
                if batch[0].terminal:
                    break
        finally:
            if not supervisor.done():
                job.request_stop(CancelledEvent(JobReason.CANCELLED_BY_USER, "consumer went away"))
                kill_group(job.process)
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
            for task in job.pumps.values():
                task.cancel()
            for _, transport in job.readers.values():
                transport.close()

    async def _supervise(self, job: SupervisedJob, queue: EventQueue) -> None:
        job.pumps = {
            "events": asyncio.create_task(self._pump_events(job, queue)),
            "stdout": asyncio.create_task(_pump_lines(job, "stdout", queue)),
            "stderr": asyncio.create_task(_pump_lines(job, "stderr", queue)),
        }
        finished = False
        try:
            finished = await self._wait_for_end(job)
        finally:
            kill_group(job.process)
            if not finished:  # else it is exiting: the caller waits for it before the uid is free
                await job.process.wait()
                kill_group(job.process)  # whatever the program left behind in its group
            if job.uid is not None:  # and outside it (setsid): before the outcome is told
                job.swept = await _sweep(job.uid, job.cgroup_tasks)
            await _drain(job)
        await queue.put(_outcome(job))

    async def _wait_for_end(self, job: SupervisedJob) -> bool:
        """Return once the process exited, or after asking it to stop for a reason.

        True when the worker reported its outcome and closed all its pipes: it is on its way
        out, and waiting for the kernel to tear down a forked process's memory (~10 ms) would
        only delay the outcome. The caller kills it instead (docs/performance.md).
        """
        exited = asyncio.create_task(job.process.wait())
        stopped = asyncio.create_task(job.stop.wait())
        started = asyncio.create_task(job.started.wait())
        closed = asyncio.create_task(_all_pipes_closed(job))
        try:
            await asyncio.wait(
                {exited, stopped, started},
                timeout=self.config.start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not (exited.done() or stopped.done() or started.done()):
                message = f"the worker did not start within {self.config.start_timeout:g} s"
                job.request_stop(ErrorEvent(message, JobReason.PROCESS_CRASHED))
                return False
            if started.done() and not (exited.done() or stopped.done()):
                limit = job.request.max_execution_time
                deadline = asyncio.get_running_loop().time() + limit
                waiting = {exited, stopped, closed}
                while not (exited.done() or stopped.done()):
                    remaining = deadline - asyncio.get_running_loop().time()
                    done, waiting = await asyncio.wait(
                        waiting, timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED
                    )
                    if closed in done and job.reported is not None and not stopped.done():
                        return True
                    if not done:
                        message = f"the job ran longer than its max_execution_time of {limit:g} s"
                        job.request_stop(CancelledEvent(JobReason.RAN_TOO_LONG, message))
                        break
            return False
        finally:
            for task in (exited, stopped, started, closed):
                task.cancel()

    async def _pump_events(self, job: SupervisedJob, queue: EventQueue) -> None:
        reader, transport = job.readers["events"]
        loop = asyncio.get_running_loop()
        limits = self.config.limits
        max_frame = min(self.config.max_frame_bytes, limits.max_frame_bytes)
        throttle = RateLimiter(limits.max_interim_rate)
        try:
            while True:
                job.idle_since["events"] = loop.time()
                message = await read_frame(reader, max_bytes=max_frame)
                job.idle_since["events"] = None
                if message is None:
                    return
                event = self._accept(job, message)
                if event is not None:
                    await queue.put(event)
                    await throttle.wait()  # a flood of publishes slows down, it is not lost
                    until = queue.hold_until(len(event.data) + FRAME_BYTES, HOLD_BYTES)
                    if until is not None:
                        await _hold(transport, until)
        except LimitExceeded as exc:
            job.request_stop(ErrorEvent(str(exc), JobReason.PROGRAM_FAILED))
        except Exception as exc:  # ProtocolError, or anything a hostile frame provokes
            message = f"the job's event pipe carried invalid data: {exc}"
            job.request_stop(ErrorEvent(message, JobReason.PROTOCOL_VIOLATION))
        finally:
            job.idle_since["events"] = None

    def _accept(self, job: SupervisedJob, message: dict) -> InterimEvent | None:
        """Check one worker message against the protocol; only interim events go out live."""
        kind = message["type"]
        if job.reported is not None:
            raise ProtocolError(f"a {kind!r} message arrived after the job's final message")
        if kind == "started":
            job.started.set()
            return None
        limits = self.config.limits
        if kind == "interim":
            seq, data = message.get("seq"), message.get("data")
            if type(seq) is not int or seq != job.last_seq + 1 or not isinstance(data, str):
                raise ProtocolError(
                    f"interim message out of sequence (expected {job.last_seq + 1})"
                )
            job.last_seq = seq
            if seq > limits.max_interim_results:
                raise LimitExceeded(too_many_interims(limits.max_interim_results))
            if len(data) > limits.max_interim_bytes:
                raise LimitExceeded(interim_too_large(len(data), limits.max_interim_bytes))
            if problem := published_json_problem(data):
                raise LimitExceeded(unstorable(f"interim result {seq}", problem))
            return InterimEvent(seq, data)
        field_name = "data" if kind == "result" else "message"
        value = message.get(field_name)
        if not isinstance(value, str):
            raise ProtocolError(f"a {kind!r} message without a string {field_name!r}")
        if kind == "result" and len(value) > limits.max_result_bytes:
            raise LimitExceeded(result_too_large(len(value), limits.max_result_bytes))
        job.reported = ResultEvent(value) if kind == "result" else ErrorEvent(value)
        return None


def _outcome(job: SupervisedJob) -> TerminalEvent:
    if isinstance(job.reported, ResultEvent) and isinstance(job.stop_event, CancelledEvent):
        return job.reported  # the result was complete before the stop took effect
    if job.stop_event is not None:
        return job.stop_event
    if job.reported is not None:
        return job.reported
    return ErrorEvent(describe_exit(job.process.returncode or 0), JobReason.PROCESS_CRASHED)


async def _hold(transport: asyncio.BaseTransport, until: float) -> None:
    """Leave the event pipe unread until ``until``: the worker's next results wait in the pipe
    (it blocks only once the pipe is full) and are then read in one go, not one wake-up each."""
    if not isinstance(transport, asyncio.ReadTransport) or not transport.is_reading():
        return  # paused already: the reader's buffer is full
    transport.pause_reading()
    try:
        await asyncio.sleep(until - asyncio.get_running_loop().time())
    finally:
        transport.resume_reading()


async def _pump_lines(job: SupervisedJob, name: str, queue: EventQueue) -> None:
    loop = asyncio.get_running_loop()
    lines = aiter(iter_lines(job.readers[name][0]))
    try:
        while True:
            job.idle_since[name] = loop.time()
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
            job.idle_since[name] = None
            await queue.put(LogEvent(line, name))  # type: ignore[arg-type]
    finally:
        job.idle_since[name] = None


async def _sweep(uid: int, cgroup_tasks: str | None) -> bool:
    """Kill every process of ``uid``; see :func:`kill_user_processes`.

    The first look runs on the loop and usually finds nothing: the job's cgroup (a few status
    reads) where it has one, else a ``/proc`` scan (a millisecond or two; in a thread, its
    hundreds of short system calls each queued for the GIL behind the busy loop).
    """
    if not job_processes(uid, cgroup_tasks):
        return True
    return await asyncio.to_thread(kill_user_processes, uid, cgroup_tasks=cgroup_tasks)


async def _all_pipes_closed(job: SupervisedJob) -> None:
    """Every pump reached the end of its pipe: no process holds one open any more."""
    await asyncio.wait(list(job.pumps.values()))


async def _drain(job: SupervisedJob) -> None:
    """Let the pumps finish; give up only on pipes that wait for input no process sends.

    A pump blocked on a slow consumer is making progress and is never cut off, so no event
    (and no result) is lost; a pipe held open by a process outside the group is.
    """
    loop = asyncio.get_running_loop()
    pending = dict(job.pumps)
    while pending:
        await asyncio.wait(pending.values(), timeout=0.25)
        pending = {name: task for name, task in pending.items() if not task.done()}
        since = [job.idle_since.get(name) for name in pending]
        if pending and all(t is not None and loop.time() - t > DRAIN_TIMEOUT for t in since):
            for task in pending.values():
                task.cancel()
            await asyncio.wait(pending.values())
            return
