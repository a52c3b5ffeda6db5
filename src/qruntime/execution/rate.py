"""A token bucket that slows a fast producer down to a rate instead of refusing it."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """``await wait()`` after each event; it sleeps once the burst of one second is used up."""

    def __init__(self, per_second: float):
        self._rate = per_second
        self._tokens = per_second
        self._stamp = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= 1
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self._rate)
