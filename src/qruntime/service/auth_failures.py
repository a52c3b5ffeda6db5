"""A limit on failed authentications per client address, so tokens cannot be guessed at speed.

An address with ``max_failures`` failures in the last minute is refused every authentication,
right or wrong, until the oldest failure leaves the window: were a right token still let
through, the refusals would tell a guesser nothing. Counted per server process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

from qruntime.domain.errors import QuotaExceededError

WINDOW_SECONDS = 60.0
#: Addresses remembered at most; the least recently failing ones are forgotten first.
MAX_ADDRESSES = 10_000


class TooManyFailedAuthenticationsError(QuotaExceededError):
    """The caller's address failed to authenticate too often; it may try again later."""


class FailedAuthLimiter:
    def __init__(self, max_failures: int, *, window_seconds: float = WINDOW_SECONDS):
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        """Raise TooManyFailedAuthenticationsError while ``address`` is over the limit."""
        if address is None:
            return
        with self._lock:
            failures = self._recent(address, time.monotonic())
            if failures is None or len(failures) < self.max_failures:
                return
            wait = math.ceil(failures[0] + self.window - time.monotonic())
        raise TooManyFailedAuthenticationsError(
            f"too many failed authentications from {address}: {len(failures)} in the last "
            f"{self.window:g} s, the limit (QRUNTIME_MAX_FAILED_AUTHS_PER_MINUTE is "
            f"{self.max_failures}); try again in {max(wait, 1)} s"
        )

    def record_failure(self, address: str | None) -> None:
        if address is None:
            return
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if failures is None:
                failures = self._failures[address] = deque(maxlen=self.max_failures)
                while len(self._failures) > MAX_ADDRESSES:
                    self._failures.popitem(last=False)
            failures.append(now)
            self._failures.move_to_end(address)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures
