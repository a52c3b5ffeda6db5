"""Wakes readers of a job's event log when something new was stored for that job.

Carries no data: readers re-read the database after the last sequence number they sent, so
fan-out can never lose, reorder or repeat a message (and maps onto PostgreSQL NOTIFY later).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class StreamHub:
    """Per-job change counters on one event loop; ``notify`` and ``Watch`` run on that loop."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def notify(self, job_id: str) -> None:
        self._versions[job_id] += 1
        for waiter in self._waiters.pop(job_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def watch(self, job_id: str) -> Watch:
        return Watch(self, job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job's counter once nobody can be waiting for it."""
        if not self._waiters.get(job_id):
            self._versions.pop(job_id, None)
            self._waiters.pop(job_id, None)


class Watch:
    """Take ``snapshot()`` before reading the database, then ``wait()`` for anything newer."""

    def __init__(self, hub: StreamHub, job_id: str):
        self._hub = hub
        self._job_id = job_id
        self._seen = hub._versions.get(job_id, 0)

    def snapshot(self) -> None:
        self._seen = self._hub._versions.get(self._job_id, 0)

    async def wait(self, timeout: float | None = None) -> bool:
        """True once the job changed after the snapshot; False on timeout."""
        if self._hub._versions.get(self._job_id, 0) != self._seen:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hub._waiters[self._job_id].add(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        finally:
            waiters = self._hub._waiters.get(self._job_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._hub._waiters[self._job_id]
        return True
