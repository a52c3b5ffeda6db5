"""Hypothesis profiles for the fuzz tests: ``fuzz`` (the default, small) and ``long``.

``HYPOTHESIS_PROFILE=long pytest tests/fuzz`` picks the long one. The profile is applied per test
with ``fuzz_support.fuzz_settings`` rather than loaded globally, so a combined run leaves the
hypothesis settings of other test directories alone.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

#: ``deadline`` turns a hang or a super-linear blow-up on one example into a failure.
_COMMON = {
    "deadline": 5000,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,
}
# Not named "ci": hypothesis registers (and in CI loads) its own "ci" profile for every test.
settings.register_profile("fuzz", max_examples=150, **_COMMON)
settings.register_profile("long", max_examples=5_000, **_COMMON)


def _restore_function_nodeid() -> None:
    """Let ``schemathesis.pytest.from_fixture`` run on pytest >= 9.2.

    schemathesis 4.32 reads and rewrites ``item._nodeid`` to name each operation's subtest;
    pytest 9.2 keeps the id in ``item._id`` (a ``NodeId``) and has no ``_nodeid`` any more. This
    puts back a property over ``_id``, only where pytest lacks the attribute. Drop it once
    schemathesis stops touching ``_nodeid``.
    """
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # pytest < 9.2: ``_nodeid`` is a plain instance attribute
        return
    if hasattr(pytest.Function, "_nodeid"):
        return

    def get(item: pytest.Function) -> str:
        return item.nodeid

    def put(item: pytest.Function, value: str) -> None:
        item._id = coerce_node_id(value)

    pytest.Function._nodeid = property(get, put)  # type: ignore[attr-defined]


_restore_function_nodeid()
