"""Wakes readers of a job's event log when something new was stored for that job.

Readers re-read the database after the last sequence number they sent, so fan-out can never
lose, reorder or repeat a message (and maps onto PostgreSQL NOTIFY later). Interim results
just stored are also kept here for a while: a reader that is exactly caught up takes them
from memory instead of reading them back (``recent``); any gap sends it to the database. A
reader waiting when the job's outcome is stored here is handed it (``Watch.ended``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from qruntime.service.job_end import JobEnd
from qruntime.storage import StoredInterim

#: At most this many interim results, and this many bytes of them, kept per running job.
RECENT_INTERIMS = 1024
RECENT_BYTES = 4 * 1024 * 1024


class StreamHub:
    """Per-job change stamps on one event loop; ``notify`` and ``Watch`` run on that loop.

    Stamps come from one clock that only moves forward, so a job forgotten and woken again
    never repeats a stamp a reader holds; a reader whose job was forgotten since its snapshot
    counts that as a change (it reads the database again, at worst for nothing).
    """

    def __init__(self) -> None:
        self._clock = 0
        #: The clock when a job's stamps were last dropped by :meth:`forget`.
        self._forgotten_at = 0
        self._versions: dict[str, int] = {}
        #: Bumped by every change but stored interim results: status, result, deletion.
        self._state_versions: dict[str, int] = {}
        self._recent: dict[str, deque[StoredInterim]] = {}
        self._recent_bytes: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, set[asyncio.Future[EndSeen | None]]] = defaultdict(set)

    def notify(self, job_id: str) -> None:
        """The job's row changed (status, result): readers must read it again."""
        self._clock += 1
        self._state_versions[job_id] = self._clock
        self._wake(job_id)

    def notify_ended(self, job_id: str, end: JobEnd) -> None:
        """The job's outcome was just committed, as ``end`` says: the readers waiting now are
        handed it with the interims kept, so they need not read the job back."""
        self._clock += 1
        self._state_versions[job_id] = self._clock
        waiting = self._waiters.get(job_id)
        self._wake(job_id, EndSeen(end, tuple(self._recent.get(job_id, ()))) if waiting else None)

    def notify_interims(self, job_id: str, interims: Sequence[StoredInterim]) -> None:
        """These interim results were just committed, in order."""
        recent = self._recent.setdefault(job_id, deque())
        if recent and interims and interims[0].seq != recent[-1].seq + 1:
            recent.clear()  # not contiguous: what is kept must have no gaps
            self._recent_bytes[job_id] = 0
        for interim in interims:
            recent.append(interim)
            self._recent_bytes[job_id] += len(interim.data)
        while recent and (
            len(recent) > RECENT_INTERIMS or self._recent_bytes[job_id] > RECENT_BYTES
        ):
            self._recent_bytes[job_id] -= len(recent.popleft().data)
        self._wake(job_id)

    def wake(self, job_id: str) -> None:
        """Interim results were stored by another process: readers read them from the database."""
        self._wake(job_id)

    def wake_all(self) -> None:
        """Anything may have changed (signals were missed): every reader reads the database."""
        for job_id in list(self._waiters):
            self.notify(job_id)

    def recent(self, job_id: str, after: int) -> list[StoredInterim] | None:
        """Kept interims with ``seq > after``; None unless they cover every one after ``after``."""
        recent = self._recent.get(job_id)
        if not recent or recent[0].seq > after + 1:
            return None
        wanted = recent[-1].seq - after  # kept seqs are contiguous: the newest ``wanted``
        if wanted <= 0:
            return []
        return list(islice(reversed(recent), wanted))[::-1]

    def watch(self, job_id: str) -> Watch:
        return Watch(self, job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job's counters and kept interims once nobody can be waiting for it."""
        self._recent.pop(job_id, None)
        self._recent_bytes.pop(job_id, None)
        if not self._waiters.get(job_id):
            if self._versions.pop(job_id, None) is not None:
                self._clock += 1
                self._forgotten_at = self._clock
            self._state_versions.pop(job_id, None)
            self._waiters.pop(job_id, None)

    def _wake(self, job_id: str, ended: EndSeen | None = None) -> None:
        self._clock += 1
        self._versions[job_id] = self._clock
        for waiter in self._waiters.pop(job_id, ()):
            if not waiter.done():
                waiter.set_result(ended)


@dataclass(frozen=True)
class EndSeen:
    """A job's end as it was stored, with the interims the hub kept then (without gaps).

    Handed only to the readers waiting at that moment, never kept: a job id may be used again
    once its job is deleted, and other replicas' changes reach the hub as wake-ups only.
    """

    end: JobEnd
    kept: tuple[StoredInterim, ...]

    def interims_after(self, after: int) -> list[StoredInterim] | None:
        """Every interim with ``seq > after``, if the kept ones hold them all; else None."""
        last = self.end.last_seq
        if last <= after:
            return []
        kept = self.kept
        if not kept or kept[0].seq > after + 1 or kept[-1].seq != last:
            return None  # stored by another process, dropped from the window, or a gap
        return list(kept[after + 1 - kept[0].seq :])


class Watch:
    """Take ``snapshot()`` before reading the database, then ``wait()`` for anything newer."""

    def __init__(self, hub: StreamHub, job_id: str):
        self._hub = hub
        self._job_id = job_id
        #: The job's end, if it was stored on this replica while the last ``wait`` waited.
        self.ended: EndSeen | None = None
        self.snapshot()

    def snapshot(self) -> None:
        self._seen = self._hub._versions.get(self._job_id, 0)
        self._seen_state = self._hub._state_versions.get(self._job_id, 0)
        self._seen_clock = self._hub._clock

    def _differs(self, stamps: dict[str, int], seen: int) -> bool:
        current = stamps.get(self._job_id)
        if current is None:  # forgotten since the snapshot, or never stamped
            return seen != 0 or self._hub._forgotten_at > self._seen_clock
        return current != seen

    @property
    def changed(self) -> bool:
        """Whether anything changed since the snapshot."""
        return self._differs(self._hub._versions, self._seen)

    @property
    def state_changed(self) -> bool:
        """Whether anything but stored interim results changed since the snapshot."""
        return self._differs(self._hub._state_versions, self._seen_state)

    async def wait(self, timeout: float | None = None) -> bool:
        """True once the job changed after the snapshot; False on timeout."""
        self.ended = None
        if self.changed:
            return True
        waiter: asyncio.Future[EndSeen | None] = asyncio.get_running_loop().create_future()
        self._hub._waiters[self._job_id].add(waiter)
        try:  # no wait_for and shield: they cost three loop callbacks per wake-up, not one
            async with asyncio.timeout(timeout):
                # the waiter is this reader's alone: cancelling it loses nothing
                self.ended = await waiter
        except TimeoutError:
            return False
        finally:
            waiters = self._hub._waiters.get(self._job_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._hub._waiters[self._job_id]
        return True
