"""LocalExecutor: one fresh OS process (and process group) per job on this machine.

The parts are shared with the Ray agent, which runs the same executor on each Ray node:
:class:`WorkerPlacement` (uid, directory, sandbox plan), :class:`WorkerSupply` (zygote and
warm pool) and :class:`JobSupervisor` (pipes, limits, time limit, outcome).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qruntime.domain.events import JobEvent
from qruntime.execution.event_queue import SINGLE_EVENTS, BatchShape, one_at_a_time
from qruntime.execution.executor import Executor
from qruntime.execution.limits import JobLimits
from qruntime.execution.placement import WorkerPlacement
from qruntime.execution.protocol import DEFAULT_MAX_FRAME_BYTES
from qruntime.execution.request import JobRequest
from qruntime.execution.sandbox import SandboxConfig
from qruntime.execution.sandbox_probe import SandboxReport
from qruntime.execution.supervisor import (
    DEFAULT_START_TIMEOUT,
    JobSupervisor,
    SupervisedJob,
    SupervisorConfig,
)
from qruntime.execution.warm_pool import WarmPoolConfig
from qruntime.execution.worker_pipes import send_and_close
from qruntime.execution.worker_supply import WorkerSupply


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


class LocalExecutor(Executor):
    """Runs each job in a worker forked from the warm zygote (or a fresh Python), sandboxed."""

    kind = "local"

    def __init__(self, config: LocalExecutorConfig | None = None):
        self.config = config = config or LocalExecutorConfig()
        self._jobs: dict[str, SupervisedJob] = {}
        self._placement = WorkerPlacement(config.sandbox, config.python, config.workdir_root)
        self._supply = WorkerSupply(config.python, self._placement, config.pool)
        self._supervisor = JobSupervisor(
            SupervisorConfig(
                start_timeout=config.start_timeout,
                max_frame_bytes=config.max_frame_bytes,
                limits=config.limits,
                event_queue_size=config.event_queue_size,
            )
        )

    @property
    def sandbox_report(self) -> SandboxReport | None:
        return self._placement.report

    def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        return one_at_a_time(self.run_batches(request, SINGLE_EVENTS))

    async def run_batches(
        self, request: JobRequest, shape: BatchShape
    ) -> AsyncIterator[list[JobEvent]]:
        """Batched as the supervisor takes events off its queue: no task in between."""
        job = await self._start(request)
        batches = self._supervisor.batches(job, shape)
        try:
            async for batch in batches:
                if batch[0].terminal:  # name the job-wide limits (cgroup) a failure ran into
                    batch = [self._placement.explain(job.workdir, batch[0])]  # type: ignore[arg-type]
                yield batch
        finally:
            await batches.aclose()  # closed early: the worker is killed first
            self._jobs.pop(request.job_id, None)
            await asyncio.shield(
                self._supply.retire(job.process, job.uid, job.workdir, swept=job.swept)
            )

    async def cancel(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job is not None and job.cancel()

    def running_jobs(self) -> list[str]:
        return list(self._jobs)

    def pool_status(self) -> dict[str, Any]:
        """The warm pool's size, its idle workers and its zygote (for /health and tests)."""
        return self._supply.status()

    async def start(self) -> None:
        """Start the zygote and fill the warm pool, if one is configured."""
        await self._supply.start()

    async def aclose(self) -> None:
        await self._supply.aclose()
        self._placement.close()

    async def _start(self, request: JobRequest) -> SupervisedJob:
        if request.job_id in self._jobs:
            raise ValueError(f"job {request.job_id!r} is already running")
        request = replace(request, limits=self.config.limits.to_json())
        worker = await self._supply.take()
        try:
            if self._placement.sandboxed:
                plan = self._placement.plan(request.max_execution_time, worker.workdir, worker.uid)
                request = replace(request, sandbox=plan.to_json())
            job = SupervisedJob(request, worker.process, worker.workdir, worker.readers, worker.uid)
            job.cgroup_tasks = self._placement.cgroup_tasks(worker.workdir)
            payload = json.dumps(request.to_json()).encode()
        except BaseException:  # the worker never got its job: stop it, give back what it held
            await asyncio.shield(self._supply.discard(worker))
            raise
        self._jobs[request.job_id] = job
        asyncio.get_running_loop().run_in_executor(None, send_and_close, worker.job_w, payload)
        return job
