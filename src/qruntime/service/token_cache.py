"""Recently checked tokens, so that the two requests of every job do not both read the database.

An entry lives ``ttl`` seconds; revoking a token through this replica empties the cache at
once, so a revoked token stops working here immediately and on other replicas (which learn of
it only from the database) within ``ttl``. Unknown tokens are never cached: each one is read
and counts towards the failed-authentication limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from qruntime.service.principal import Principal

#: Seconds a checked token is believed without reading the database again.
DEFAULT_TOKEN_CACHE_SECONDS = 2.0
#: Tokens remembered at most; the oldest entry goes first.
MAX_ENTRIES = 4096


class TokenCache:
    """token hash → Principal for ``ttl`` seconds; thread-safe (routes run in worker threads)."""

    def __init__(self, ttl: float = DEFAULT_TOKEN_CACHE_SECONDS, *, max_entries: int = MAX_ENTRIES):
        self.ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): a read that began before it is not stored

    def get(self, token_hash: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is None:
                return None
            if time.monotonic() >= entry[0]:
                del self._entries[token_hash]
                return None
            return entry[1]

    def generation(self) -> int:
        """Pass to :meth:`put`: a revocation between the read and the put wins."""
        return self._generation

    def put(self, token_hash: str, principal: Principal, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries[token_hash] = (time.monotonic() + self.ttl, principal)
            self._entries.move_to_end(token_hash)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every token (one was revoked): the next request reads the database."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
