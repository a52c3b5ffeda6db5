"""A limit on failed authentications per client address, so tokens cannot be guessed at speed.

An address with ``max_failures`` failures in the last minute has every wrong token refused
with 429 until the oldest failure leaves the window; a right token still passes, so a
guesser on a user's address (a shared proxy, a NAT) does not lock that user out. Tokens are
random 256-bit secrets: the limit slows guessing and its cost, it is not what keeps them
secret. A request counts at most one failure, however often its token is looked up
(:func:`one_request`). Counted per server process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from qruntime.domain.errors import QuotaExceededError

WINDOW_SECONDS = 60.0
#: Addresses remembered at most; the least recently failing ones are forgotten first.
MAX_ADDRESSES = 10_000

#: The current request's verdict on its failed authentication, once it has one ([None]
#: until then); None outside a request.
_request_verdict: ContextVar[list[Exception | None] | None] = ContextVar(
    "qruntime_auth_failure_verdict", default=None
)


@contextmanager
def one_request() -> Iterator[None]:
    """Within it (one HTTP request or websocket), failures count once, whoever looks the token
    up (the body gate, the route, the dashboard): threads started inside share the verdict."""
    reset = _request_verdict.set([None])
    try:
        yield
    finally:
        _request_verdict.reset(reset)


class TooManyFailedAuthenticationsError(QuotaExceededError):
    """The caller's address failed to authenticate too often; it may try again later."""


class FailedAuthLimiter:
    def __init__(self, max_failures: int, *, window_seconds: float = WINDOW_SECONDS):
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def failed(self, address: str | None, refusal: Exception) -> Exception:
        """Count a failed authentication from ``address``; what to raise for it: ``refusal``,
        or TooManyFailedAuthenticationsError once the address is over the limit. A request
        that fails again (the route after the body gate) gets the same, counted once."""
        verdict = _request_verdict.get()
        if verdict is not None and verdict[0] is not None:
            return verdict[0]
        outcome = self._count(address) or refusal
        if verdict is not None:
            verdict[0] = outcome
        return outcome

    def _count(self, address: str | None) -> TooManyFailedAuthenticationsError | None:
        if address is None:
            return None
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if failures is not None and len(failures) >= self.max_failures:
                wait = math.ceil(failures[0] + self.window - now)
                return TooManyFailedAuthenticationsError(
                    f"too many failed authentications from {address}: {len(failures)} in the "
                    f"last {self.window:g} s, the limit (QRUNTIME_MAX_FAILED_AUTHS_PER_MINUTE "
                    f"is {self.max_failures}); try again in {max(wait, 1)} s"
                )
            if failures is None:
                failures = self._failures[address] = deque(maxlen=self.max_failures)
                while len(self._failures) > MAX_ADDRESSES:
                    self._failures.popitem(last=False)
            failures.append(now)
            self._failures.move_to_end(address)
        return None

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
