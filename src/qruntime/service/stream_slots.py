"""Caps on open event streams, per user and in total, so that streams cannot starve the server.

Each open stream holds a coroutine and wakes on every event of its job; thousands of them took
``/health`` to 20 s. A stream past a cap is refused with 429 before it starts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from qruntime.domain.errors import QuotaExceededError


class TooManyStreamsError(QuotaExceededError):
    """The caller (or the server) has as many event streams open as it may."""


class StreamSlots:
    def __init__(self, max_total: int, max_per_user: int):
        self.max_total = max_total
        self.max_per_user = max_per_user
        self._open: Counter[int] = Counter()
        self._lock = threading.Lock()

    def acquire(self, user_id: int) -> Callable[[], None]:
        """Take a slot for one stream of ``user_id``; returns the (idempotent) release."""
        with self._lock:
            total = self._open.total()
            if self._open[user_id] >= self.max_per_user:
                raise TooManyStreamsError(
                    f"you have {self._open[user_id]} event streams open, the limit per user "
                    f"(QRUNTIME_MAX_STREAMS_PER_USER is {self.max_per_user}); close one first"
                )
            if total >= self.max_total:
                raise TooManyStreamsError(
                    f"the server has {total} event streams open, its limit (QRUNTIME_MAX_STREAMS "
                    f"is {self.max_total}); try again later"
                )
            self._open[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._open[user_id] -= 1
                if self._open[user_id] <= 0:
                    del self._open[user_id]

        return release

    def status(self) -> dict[str, int]:
        """For ``GET /health``: streams open now, the most one user has open, and the caps."""
        with self._lock:
            busiest = max(self._open.values(), default=0)
            return {
                "open": self._open.total(),
                "most_open_by_one_user": busiest,
                "max": self.max_total,
                "max_per_user": self.max_per_user,
            }
