"""When the warm pool forks the worker a job took: at once when no idle one is left, else after
``refill_delay``, so that the fork does not compete with the job's own start and end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from qruntime.execution.warm_pool import WarmPool
from virtual_clock import run_virtual


@dataclass
class _Process:
    pid: int
    returncode: int | None = None

    async def wait(self) -> int:
        return 0


@dataclass
class _Worker:
    process: _Process


@dataclass
class _Forks:
    at: list[float] = field(default_factory=list)

    async def fork(self) -> _Worker:
        self.at.append(asyncio.get_running_loop().time())
        return _Worker(_Process(len(self.at)))


async def _discard(worker: _Worker) -> None:
    pass


async def _full_pool(forks: _Forks, delay: float) -> WarmPool[_Worker]:
    pool = WarmPool(2, forks.fork, _discard, refill_delay=delay)
    pool.refill()
    while len(pool.idle_pids()) < 2:
        await asyncio.sleep(0)
    forks.at.clear()
    return pool


def test_a_take_that_leaves_an_idle_worker_forks_its_successor_after_the_delay() -> None:
    async def scenario() -> tuple[float, list[float], int, list[float]]:
        forks = _Forks()
        pool = await _full_pool(forks, 0.05)
        taken_at = asyncio.get_running_loop().time()
        assert await pool.take() is not None
        await asyncio.sleep(0.01)
        before = list(forks.at)
        await asyncio.sleep(0.1)
        return taken_at, before, len(pool.idle_pids()), forks.at

    taken_at, before, idle, at = run_virtual(scenario())
    assert before == []
    assert idle == 2
    assert len(at) == 1 and at[0] - taken_at >= 0.05


def test_a_take_that_empties_the_pool_forks_at_once() -> None:
    async def scenario() -> tuple[float, list[float]]:
        forks = _Forks()
        pool = await _full_pool(forks, 0.05)
        assert await pool.take() is not None
        taken_at = asyncio.get_running_loop().time()
        assert await pool.take() is not None  # the last one: the deferred refill starts now
        for _ in range(10):
            await asyncio.sleep(0)
        return taken_at, forks.at

    taken_at, at = run_virtual(scenario())
    assert len(at) == 2 and at[0] == taken_at


def test_without_a_delay_the_pool_refills_at_once() -> None:
    async def scenario() -> list[float]:
        forks = _Forks()
        pool = await _full_pool(forks, 0.0)
        assert await pool.take() is not None
        for _ in range(10):
            await asyncio.sleep(0)
        return forks.at

    assert run_virtual(scenario()) == [0.0]
