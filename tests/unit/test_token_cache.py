"""The cache of checked tokens: entries expire, a revocation empties it, and a lookup that
raced with a revocation is not stored."""

from __future__ import annotations

import time

from qruntime.domain.users import Role
from qruntime.service.principal import Principal
from qruntime.service.token_cache import TokenCache

ALICE = Principal(1, "alice", Role.USER)


def test_an_entry_is_believed_until_its_time_runs_out() -> None:
    cache = TokenCache(0.05)
    cache.put("h", ALICE, cache.generation())
    assert cache.get("h") == ALICE
    time.sleep(0.06)
    assert cache.get("h") is None


def test_clearing_forgets_every_entry_and_refuses_puts_of_reads_begun_before_it() -> None:
    cache = TokenCache(60)
    before = cache.generation()  # a request read the token ...
    cache.put("a", ALICE, before)
    cache.clear()  # ... a revocation committed meanwhile ...
    cache.put("b", ALICE, before)  # ... so what it read may be stale: not stored
    assert cache.get("a") is None and cache.get("b") is None
    cache.put("b", ALICE, cache.generation())
    assert cache.get("b") == ALICE


def test_a_zero_ttl_caches_nothing_and_the_oldest_entry_goes_first() -> None:
    off = TokenCache(0)
    off.put("h", ALICE, off.generation())
    assert off.get("h") is None
    small = TokenCache(60, max_entries=2)
    for key in "abc":
        small.put(key, ALICE, small.generation())
    assert [small.get(k) for k in "abc"] == [None, ALICE, ALICE]
