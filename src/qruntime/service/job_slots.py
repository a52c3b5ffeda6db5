"""A replica's job slots, taken on the event loop (the dispatcher) and in submits' worker
threads (a claim right after the insert): what it runs plus its claims in flight never pass
the limit."""

from __future__ import annotations

import threading
from collections.abc import Sized


class JobSlots:
    def __init__(self, limit: int, running: Sized):
        """``running``: the jobs the replica runs, changed on the loop only."""
        self._limit = limit
        self._running = running
        self._claiming = 0
        #: Someone found no free slot while claims were in flight: they may miss its job.
        self._missed = False
        self._lock = threading.Lock()

    def take_free(self) -> int:
        """Every free slot, for one claim: give them back once its jobs count as running."""
        with self._lock:
            free = self._limit - len(self._running) - self._claiming
            if free <= 0:
                self._missed = self._missed or self._claiming > 0
                return 0
            self._claiming += free
            return free

    def give_back(self, count: int) -> bool:
        """True if a caller found no free slot while this claim was in flight: the queue
        must be looked at again, since this claim may have read it before that caller's job."""
        with self._lock:
            self._claiming -= count
            missed, self._missed = self._missed, False
            return missed
