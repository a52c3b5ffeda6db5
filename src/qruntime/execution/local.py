"""LocalExecutor: one fresh OS process (and process group) per job on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qruntime.backends.registry import gpu_available
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
from qruntime.execution.executor import Executor
from qruntime.execution.exits import describe_exit
from qruntime.execution.job_users import UidPool, kill_user_processes, processes_of
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
from qruntime.execution.sandbox import (
    CPU_SECONDS_MARGIN,
    SandboxConfig,
    SandboxPlan,
    exposed_paths,
    worker_environment,
)
from qruntime.execution.sandbox_probe import SandboxReport, probe_sandbox
from qruntime.execution.warm_pool import WarmPool, WarmPoolConfig, WorkerProcess
from qruntime.execution.worker_pipes import WorkerPipes, kill_group, open_reader, send_and_close
from qruntime.execution.zygote_handle import ZygoteHandle, ZygoteUnavailable

log = logging.getLogger(__name__)

#: How long a worker may take to import, build its backend and decode inputs.
DEFAULT_START_TIMEOUT = 120.0
#: How long to wait for pipes to close after the process group is gone.
DRAIN_TIMEOUT = 5.0
#: How long a killed worker may take to be gone before its uid is handed out regardless.
EXIT_WAIT_SECONDS = 30.0
#: The CPU limit an idle forked worker starts with (seconds of wall clock on every core); the
#: job's own, lower limit replaces it when the job arrives.
IDLE_MAX_EXECUTION_TIME = 24 * 3600
#: After the zygote failed to start, jobs start the plain way for this long before a retry.
ZYGOTE_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class LocalExecutorConfig:
    """Knobs an operator may turn; the defaults suit a single machine."""

    python: str = sys.executable
    start_timeout: float = DEFAULT_START_TIMEOUT
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    workdir_root: Path | None = None
    event_queue_size: int = 1024
    #: None runs workers unconfined (the program's author running their own code locally).
    sandbox: SandboxConfig | None = None
    limits: JobLimits = field(default_factory=JobLimits)
    #: A zygote and idle forked workers; None starts a fresh Python process per job.
    pool: WarmPoolConfig | None = None


class LimitExceeded(ProtocolError):
    """The worker sent more, or bigger, than the job's limits allow, or what cannot be stored."""


@dataclass
class _Worker:
    """A started worker process with its pipes, directory and uid, before it has a job."""

    process: WorkerProcess
    workdir: Path
    uid: int | None
    job_w: int
    readers: dict[str, tuple[asyncio.StreamReader, asyncio.BaseTransport]]


@dataclass
class _Job:
    """Supervisor-side state of one running worker."""

    request: JobRequest
    process: WorkerProcess
    workdir: Path
    readers: dict[str, tuple[asyncio.StreamReader, asyncio.BaseTransport]]
    uid: int | None = None
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


class LocalExecutor(Executor):
    """Runs each job in ``python -m qruntime.execution.worker`` in its own session."""

    def __init__(self, config: LocalExecutorConfig | None = None):
        self.config = config or LocalExecutorConfig()
        self._jobs: dict[str, _Job] = {}
        sandbox = self.config.sandbox
        self.sandbox_report: SandboxReport | None = (
            probe_sandbox(sandbox, self.config.python) if sandbox is not None else None
        )
        report = self.sandbox_report
        self._uids = UidPool(sandbox.uid_base) if sandbox and report.can_switch_uid else None
        self._exposed = exposed_paths() if report and report.can_isolate_filesystem else ()
        self._jobs_root: Path | None = None
        self._pool: WarmPool[_Worker] | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._zygote: ZygoteHandle | None = None
        self._zygote_retry_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        job = await self._start(request)
        queue: asyncio.Queue[JobEvent] = asyncio.Queue(self.config.event_queue_size)
        supervisor = asyncio.create_task(self._supervise(job, queue))
        try:
            while True:
                event = await queue.get()
                yield event
                if event.terminal:
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
            self._jobs.pop(request.job_id, None)
            await asyncio.shield(self._clean_up(job))

    async def cancel(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.process.returncode is not None:
            return False
        job.request_stop(CancelledEvent(JobReason.CANCELLED_BY_USER, "cancelled by request"))
        return True

    def running_jobs(self) -> list[str]:
        return list(self._jobs)

    def pool_status(self) -> dict[str, Any]:
        """The warm pool's size, its idle workers and its zygote (for /health and tests)."""
        size = self.config.pool.size if self.config.pool is not None else 0
        zygote = self._zygote
        return {
            "size": size,
            "idle_pids": self._pool.idle_pids() if self._pool is not None else [],
            "zygote_pid": zygote.process.pid if zygote is not None and zygote.alive else None,
        }

    async def start(self) -> None:
        """Start the zygote and fill the warm pool, if one is configured."""
        await self._pooled()

    async def aclose(self) -> None:
        pool, zygote = self._pool, self._zygote
        self._pool = self._zygote = None
        if pool is not None:
            await pool.aclose()
        if zygote is not None:
            await zygote.aclose()

    async def _start(self, request: JobRequest) -> _Job:
        if request.job_id in self._jobs:
            raise ValueError(f"job {request.job_id!r} is already running")
        request = replace(request, limits=self.config.limits.to_json())
        worker = await self._warm_worker()
        if worker is None:
            worker = await self._spawn_worker()
        if self._sandboxed:
            plan = self._plan(request.max_execution_time, worker.workdir, worker.uid)
            request = replace(request, sandbox=plan.to_json())
        job = _Job(request, worker.process, worker.workdir, worker.readers, worker.uid)
        self._jobs[request.job_id] = job
        payload = json.dumps(request.to_json()).encode()
        asyncio.get_running_loop().run_in_executor(None, send_and_close, worker.job_w, payload)
        return job

    @property
    def _sandboxed(self) -> bool:
        return self.config.sandbox is not None and self.config.sandbox.enabled

    async def _warm_worker(self) -> _Worker | None:
        """An idle forked worker, or a freshly forked one; None when there is no zygote."""
        pool = await self._pooled()
        if pool is None:
            return None
        worker = await pool.take()
        if worker is not None:
            return worker
        try:
            return await self._fork_worker()
        except ZygoteUnavailable as exc:
            log.warning("starting the job's worker the plain way: %s", exc)
            return None

    async def _pooled(self) -> WarmPool[_Worker] | None:
        """The warm pool on this loop, its zygote started (again) if needed; None without one."""
        config = self.config.pool
        if config is None or config.size <= 0:
            return None
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is not loop:
            self._pool = self._zygote = None  # that loop is gone, and its processes with it
        async with self._zygote_lock(loop):
            if self._zygote is None or not self._zygote.alive:
                if loop.time() < self._zygote_retry_at:
                    return None
                try:
                    self._zygote = await ZygoteHandle.start(
                        self.config.python,
                        # OpenBLAS starts its threads at import: not in a process that forks.
                        {**self._worker_env(tempfile.gettempdir()), "OPENBLAS_NUM_THREADS": "1"},
                        config.preload,
                        gpu_available(),
                        config.start_timeout,
                    )
                except ZygoteUnavailable as exc:
                    log.warning("%s; jobs start a fresh Python process each", exc)
                    self._zygote_retry_at = loop.time() + ZYGOTE_RETRY_SECONDS
                    return None
            if self._pool is None:
                self._pool = WarmPool(config.size, self._fork_worker, self._discard)
                self._pool_loop = loop
        self._pool.refill()
        return self._pool

    def _zygote_lock(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        if self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _fork_worker(self) -> _Worker:
        """Have the zygote fork a worker that sandboxes itself and waits for its job."""
        zygote = self._zygote
        if zygote is None or not zygote.alive:
            raise ZygoteUnavailable("the zygote is not running")
        uid, workdir = self._place()
        pipes = WorkerPipes()
        order = {
            "workdir": str(workdir),
            "env": self._worker_env(str(workdir)),
            "sandbox": None,
        }
        if self._sandboxed:  # the job's own CPU limit is applied when the job arrives
            order["sandbox"] = self._plan(IDLE_MAX_EXECUTION_TIME, workdir, uid).to_json()
        try:
            process = await zygote.fork(order, list(pipes.child_ends))
        except BaseException:
            pipes.close_all()
            await self._release(uid, workdir)
            raise
        pipes.close_child_ends()
        return await self._attach(process, workdir, uid, pipes)

    async def _spawn_worker(self) -> _Worker:
        """Start ``python -m qruntime.execution.worker``: imports and all, for this one job."""
        uid, workdir = self._place()
        env = self._worker_env(str(workdir)) if self._sandboxed else None  # None: inherit
        pipes = WorkerPipes()
        try:
            process = await asyncio.create_subprocess_exec(
                self.config.python,
                "-m",
                "qruntime.execution.worker",
                str(pipes.job_r),
                str(pipes.event_w),
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=pipes.out_w,
                stderr=pipes.err_w,
                pass_fds=(pipes.job_r, pipes.event_w),
                start_new_session=True,
                cwd=workdir,
                env=env,
            )
        except BaseException:
            pipes.close_all()
            await self._release(uid, workdir)
            raise
        pipes.close_child_ends()
        return await self._attach(process, workdir, uid, pipes)

    async def _attach(
        self, process: WorkerProcess, workdir: Path, uid: int | None, pipes: WorkerPipes
    ) -> _Worker:
        """Open our readers on a started worker's pipes (plain pipes, read by our transports:
        asyncio's Process.wait() would otherwise also wait for a grandchild holding them)."""
        readers = {}
        try:
            for name, fd in (
                ("events", pipes.event_r),
                ("stdout", pipes.out_r),
                ("stderr", pipes.err_r),
            ):
                readers[name] = await open_reader(fd)
        except BaseException:
            kill_group(process)
            for _, transport in readers.values():
                transport.close()
            os.close(pipes.job_w)
            await self._release(uid, workdir)
            raise
        return _Worker(process, workdir, uid, pipes.job_w, readers)

    async def _discard(self, worker: _Worker) -> None:
        """Stop a worker that never got a job, and give back what it held."""
        kill_group(worker.process)
        for _, transport in worker.readers.values():
            transport.close()
        with contextlib.suppress(OSError):
            os.close(worker.job_w)
        await self._release(worker.uid, worker.workdir)

    def _place(self) -> tuple[int | None, Path]:
        """A uid (when the sandbox switches uids) and a fresh working directory."""
        uid = self._uids.acquire() if self._uids is not None else None
        try:
            return uid, self._make_workdir(uid)
        except BaseException:
            if uid is not None:
                self._uids.release(uid)
            raise

    def _worker_env(self, workdir: str) -> dict[str, str]:
        """The allow-listed environment in a sandbox; the server's own without one."""
        if not self._sandboxed:
            return dict(os.environ)
        assert self.config.sandbox is not None
        return worker_environment(self.config.sandbox, workdir)

    def _make_workdir(self, uid: int | None) -> Path:
        """A fresh directory only the job's uid can enter, under a root nobody else can list."""
        if uid is None:
            return Path(tempfile.mkdtemp(prefix="qruntime-job-", dir=self.config.workdir_root))
        if self._jobs_root is None or not self._jobs_root.is_dir():
            root = Path(tempfile.mkdtemp(prefix="qruntime-jobs-", dir=self.config.workdir_root))
            root.chmod(0o711)
            self._jobs_root = root
        workdir = Path(tempfile.mkdtemp(prefix="job-", dir=self._jobs_root))
        os.chown(workdir, uid, uid)
        workdir.chmod(0o700)
        return workdir

    def _plan(self, max_execution_time: float, workdir: Path, uid: int | None) -> SandboxPlan:
        config, report = self.config.sandbox, self.sandbox_report
        assert config is not None and report is not None
        cpus = os.cpu_count() or 1
        return SandboxPlan(
            workdir=str(workdir),
            uid=uid,
            isolate_network=report.can_isolate_network,
            isolate_filesystem=report.can_isolate_filesystem,
            hidden_paths=tuple(os.path.realpath(p) for p in config.hidden_paths),
            exposed_paths=self._exposed,
            max_address_space_bytes=config.max_address_space_bytes,
            max_cpu_seconds=int(max_execution_time * cpus) + CPU_SECONDS_MARGIN,
            max_processes=config.max_processes,
            max_file_bytes=config.max_file_bytes,
            max_open_files=config.max_open_files,
        )

    async def _clean_up(self, job: _Job) -> None:
        # The supervisor already swept the uid clean; with no process left, none can appear.
        # A worker killed as it exited may still be tearing down: its uid waits until it is gone.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.process.wait(), EXIT_WAIT_SECONDS)
        await self._release(job.uid, job.workdir, swept=job.swept)

    async def _release(self, uid: int | None, workdir: Path, *, swept: bool = False) -> None:
        """Kill what a worker left behind (also outside its group), then remove its directory."""
        if uid is not None:
            if not swept:
                await asyncio.to_thread(kill_user_processes, uid)
            assert self._uids is not None
            self._uids.release(uid)
        await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _supervise(self, job: _Job, queue: asyncio.Queue[JobEvent]) -> None:
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
            if not finished:  # else it is exiting: _clean_up waits for it before the uid is free
                await job.process.wait()
                kill_group(job.process)  # whatever the program left behind in its group
            if job.uid is not None:  # and outside it (setsid): before the outcome is told
                job.swept = await _sweep(job.uid)
            await _drain(job)
        await queue.put(self._outcome(job))

    async def _wait_for_end(self, job: _Job) -> bool:
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

    async def _pump_events(self, job: _Job, queue: asyncio.Queue[JobEvent]) -> None:
        reader = job.readers["events"][0]
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
        except LimitExceeded as exc:
            job.request_stop(ErrorEvent(str(exc), JobReason.PROGRAM_FAILED))
        except Exception as exc:  # ProtocolError, or anything a hostile frame provokes
            message = f"the job's event pipe carried invalid data: {exc}"
            job.request_stop(ErrorEvent(message, JobReason.PROTOCOL_VIOLATION))
        finally:
            job.idle_since["events"] = None

    def _accept(self, job: _Job, message: dict) -> InterimEvent | None:
        """Check one worker message against the protocol; only interim events go out live."""
        kind = message["type"]
        if job.reported is not None:
            raise ProtocolError(f"a {kind!r} message arrived after the job's final message")
        if kind == "started":
            job.started.set()
            return None
        if kind == "interim":
            seq, data = message.get("seq"), message.get("data")
            if type(seq) is not int or seq != job.last_seq + 1 or not isinstance(data, str):
                raise ProtocolError(
                    f"interim message out of sequence (expected {job.last_seq + 1})"
                )
            job.last_seq = seq
            limits = self.config.limits
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
        if kind == "result" and len(value) > self.config.limits.max_result_bytes:
            raise LimitExceeded(result_too_large(len(value), self.config.limits.max_result_bytes))
        job.reported = ResultEvent(value) if kind == "result" else ErrorEvent(value)
        return None

    @staticmethod
    def _outcome(job: _Job) -> TerminalEvent:
        if isinstance(job.reported, ResultEvent) and isinstance(job.stop_event, CancelledEvent):
            return job.reported  # the result was complete before the stop took effect
        if job.stop_event is not None:
            return job.stop_event
        if job.reported is not None:
            return job.reported
        return ErrorEvent(describe_exit(job.process.returncode or 0), JobReason.PROCESS_CRASHED)


async def _pump_lines(job: _Job, name: str, queue: asyncio.Queue[JobEvent]) -> None:
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


async def _sweep(uid: int) -> bool:
    """Kill every process of ``uid``; see :func:`kill_user_processes`.

    The first scan runs on the loop: it takes a millisecond or two and usually finds nothing.
    In a thread, its hundreds of short system calls each queued for the GIL behind the busy
    loop and took several times as long (docs/performance.md).
    """
    if not processes_of(uid):
        return True
    return await asyncio.to_thread(kill_user_processes, uid)


async def _all_pipes_closed(job: _Job) -> None:
    """Every pump reached the end of its pipe: no process holds one open any more."""
    await asyncio.wait(list(job.pumps.values()))


async def _drain(job: _Job) -> None:
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
