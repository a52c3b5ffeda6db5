"""Workers ready for a job: taken from the warm pool, forked from the zygote on demand, or, with
no zygote, started as a fresh ``python -m qruntime.execution.worker``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qruntime.backends.registry import gpu_available
from qruntime.execution.placement import WorkerPlacement
from qruntime.execution.warm_pool import WarmPool, WarmPoolConfig, WorkerProcess
from qruntime.execution.worker_pipes import WorkerPipes, kill_group, open_reader
from qruntime.execution.zygote_handle import ZygoteHandle, ZygoteUnavailable

log = logging.getLogger(__name__)

#: The CPU limit an idle forked worker starts with (seconds of wall clock on every core); the
#: job's own, lower limit replaces it when the job arrives.
IDLE_MAX_EXECUTION_TIME = 24 * 3600
#: How long a killed worker may take to be gone before its uid is handed out regardless.
EXIT_WAIT_SECONDS = 30.0
#: After the zygote failed to start, jobs start the plain way for this long before a retry.
ZYGOTE_RETRY_SECONDS = 30.0

Readers = dict[str, tuple[asyncio.StreamReader, asyncio.BaseTransport]]


@dataclass
class StartedWorker:
    """A started worker process with its pipes, directory and uid, before it has a job."""

    process: WorkerProcess
    workdir: Path
    uid: int | None
    job_w: int
    readers: Readers


class WorkerSupply:
    """Owns this machine's zygote and warm pool; every job's worker comes from :meth:`take`."""

    def __init__(self, python: str, placement: WorkerPlacement, pool: WarmPoolConfig | None):
        self.python = python
        self.placement = placement
        self.pool_config = pool
        self._pool: WarmPool[StartedWorker] | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._zygote: ZygoteHandle | None = None
        self._zygote_retry_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start the zygote and fill the warm pool, if one is configured."""
        await self._pooled()

    async def take(self) -> StartedWorker:
        """A warm worker when there is a zygote, else a freshly started Python."""
        worker = await self._warm_worker()
        return worker if worker is not None else await self._spawn_worker()

    def status(self) -> dict[str, Any]:
        """The warm pool's size, its idle workers and its zygote (for /health and tests)."""
        size = self.pool_config.size if self.pool_config is not None else 0
        zygote = self._zygote
        return {
            "size": size,
            "idle_pids": self._pool.idle_pids() if self._pool is not None else [],
            "zygote_pid": zygote.process.pid if zygote is not None and zygote.alive else None,
        }

    async def aclose(self) -> None:
        pool, zygote = self._pool, self._zygote
        self._pool = self._zygote = None
        if pool is not None:
            await pool.aclose()
        if zygote is not None:
            await zygote.aclose()

    async def _warm_worker(self) -> StartedWorker | None:
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

    async def _pooled(self) -> WarmPool[StartedWorker] | None:
        """The warm pool on this loop, its zygote started (again) if needed; None without one."""
        config = self.pool_config
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
                        self.python,
                        # OpenBLAS starts its threads at import: not in a process that forks.
                        {
                            **self.placement.environment(tempfile.gettempdir()),
                            "OPENBLAS_NUM_THREADS": "1",
                        },
                        config.preload,
                        gpu_available(),
                        config.start_timeout,
                    )
                except ZygoteUnavailable as exc:
                    log.warning("%s; jobs start a fresh Python process each", exc)
                    self._zygote_retry_at = loop.time() + ZYGOTE_RETRY_SECONDS
                    return None
            if self._pool is None:
                self._pool = WarmPool(
                    config.size, self._fork_worker, self.discard, config.refill_delay
                )
                self._pool_loop = loop
        self._pool.refill()
        return self._pool

    def _zygote_lock(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        if self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _fork_worker(self) -> StartedWorker:
        """Have the zygote fork a worker that sandboxes itself and waits for its job."""
        zygote = self._zygote
        if zygote is None or not zygote.alive:
            raise ZygoteUnavailable("the zygote is not running")
        placement = self.placement
        uid, workdir = placement.place()
        pipes = WorkerPipes()
        order = {
            "workdir": str(workdir),
            "env": placement.environment(str(workdir)),
            "sandbox": None,
        }
        if placement.sandboxed:  # the job's own CPU limit is applied when the job arrives
            order["sandbox"] = placement.plan(IDLE_MAX_EXECUTION_TIME, workdir, uid).to_json()
        try:
            process = await zygote.fork(order, list(pipes.child_ends))
        except BaseException:
            pipes.close_all()
            await placement.release(uid, workdir)
            raise
        pipes.close_child_ends()
        return await self._attach(process, workdir, uid, pipes)

    async def _spawn_worker(self) -> StartedWorker:
        """Start ``python -m qruntime.execution.worker``: imports and all, for this one job."""
        placement = self.placement
        uid, workdir = placement.place()
        env = placement.environment(str(workdir)) if placement.sandboxed else None  # inherit
        pipes = WorkerPipes()
        try:
            process = await asyncio.create_subprocess_exec(
                self.python,
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
            await placement.release(uid, workdir)
            raise
        pipes.close_child_ends()
        return await self._attach(process, workdir, uid, pipes)

    async def _attach(
        self, process: WorkerProcess, workdir: Path, uid: int | None, pipes: WorkerPipes
    ) -> StartedWorker:
        """Open our readers on a started worker's pipes (plain pipes, read by our transports:
        asyncio's Process.wait() would otherwise also wait for a grandchild holding them)."""
        readers: Readers = {}
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
            await self.placement.release(uid, workdir)
            raise
        return StartedWorker(process, workdir, uid, pipes.job_w, readers)

    async def retire(
        self, process: WorkerProcess, uid: int | None, workdir: Path, *, swept: bool
    ) -> None:
        """Give back what a worker that ran a job held, once its process is gone.

        A worker killed as it exited may still be tearing down: its uid waits until it is gone;
        ``swept`` says no process of the uid is left (none can appear without one).
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), EXIT_WAIT_SECONDS)
        await self.placement.release(uid, workdir, swept=swept)

    async def discard(self, worker: StartedWorker) -> None:
        """Stop a worker that never got a job, and give back what it held."""
        kill_group(worker.process)
        for _, transport in worker.readers.values():
            transport.close()
        with contextlib.suppress(OSError):
            os.close(worker.job_w)
        await self.placement.release(worker.uid, worker.workdir)
