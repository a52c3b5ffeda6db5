"""A few forked workers waiting, already sandboxed, so that a job starts by being sent a pipe."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

#: What the zygote imports before it forks: the catalogue's common imports, Aer and the fakes.
DEFAULT_PRELOAD = (
    "numpy",
    "scipy",
    "scipy.optimize",
    "qiskit",
    "qiskit.circuit.library",
    "qiskit.primitives",
    "qiskit.quantum_info",
    "qiskit.transpiler",
    "qiskit.transpiler.preset_passmanagers",
    "qiskit_aer",
    "qiskit_aer.noise",
    "qiskit_ibm_runtime.fake_provider",
    "mthree",
    "qruntime.serialization",
    "qruntime.execution.worker",
)


@dataclass(frozen=True)
class WarmPoolConfig:
    """``size`` idle workers are kept; 0 turns the zygote off (a fresh Python per job)."""

    size: int = 2
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    #: How long the zygote may take to import everything before jobs start the plain way.
    start_timeout: float = 120.0
    #: While an idle worker is left, the fork of the one a job took waits this long: a trivial
    #: job is over by then, so the fork and the sandbox set-up of its successor no longer
    #: compete with that job's start and end for the cores (docs/performance.md).
    refill_delay: float = 0.05


class WorkerProcess(Protocol):
    """A spawned ``asyncio.subprocess.Process`` or a worker the zygote forked."""

    pid: int
    returncode: int | None

    async def wait(self) -> int: ...


class _Worker(Protocol):
    process: WorkerProcess


W = TypeVar("W", bound=_Worker)


class WarmPool(Generic[W]):
    """Keeps ``size`` idle workers; each runs one job and exits, and the pool forks another."""

    def __init__(
        self,
        size: int,
        fork: Callable[[], Awaitable[W]],
        discard: Callable[[W], Awaitable[None]],
        refill_delay: float = 0.0,
    ):
        self.size = size
        self._fork = fork
        self._discard = discard
        self._refill_delay = refill_delay
        self._idle: collections.deque[W] = collections.deque()
        self._refill_task: asyncio.Task[None] | None = None
        self._deferred: asyncio.TimerHandle | None = None
        self._closed = False

    def idle_pids(self) -> list[int]:
        return [w.process.pid for w in self._idle if w.process.returncode is None]

    def refill(self) -> None:
        """Fork in the background until ``size`` workers wait (no-op while that is under way)."""
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self._closed or (self._refill_task is not None and not self._refill_task.done()):
            return
        if len(self._idle) >= self.size:
            return
        self._refill_task = asyncio.get_running_loop().create_task(self._refill())

    def _refill_soon(self) -> None:
        """Refill now when no idle worker is left, else after ``refill_delay``."""
        if self._idle and self._refill_delay > 0:
            if self._deferred is None and not self._closed:
                loop = asyncio.get_running_loop()
                self._deferred = loop.call_later(self._refill_delay, self.refill)
            return
        self.refill()

    async def take(self) -> W | None:
        """An idle worker, or None when none is ready (the caller forks or spawns one)."""
        worker = None
        while self._idle and worker is None:
            candidate = self._idle.popleft()
            if candidate.process.returncode is None:
                worker = candidate
            else:  # it died waiting (killed by someone, or its zygote went away)
                await self._discard(candidate)
        self._refill_soon()
        return worker

    async def aclose(self) -> None:
        self._closed = True
        if self._deferred is not None:
            self._deferred.cancel()
        if self._refill_task is not None:
            self._refill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill_task
        while self._idle:
            await self._discard(self._idle.popleft())

    async def _refill(self) -> None:
        while not self._closed and len(self._idle) < self.size:
            try:
                worker = await self._fork()
            except Exception as exc:  # zygote gone or fork refused: the next take() tries again
                log.warning("could not fork an idle worker: %s", exc)
                return
            if self._closed:
                await self._discard(worker)
                return
            self._idle.append(worker)
