"""An event loop with a virtual clock, for tests of code timed on ``loop.time()``: time moves
only when every task waits, by exactly as much as the next timer needs, so a loaded machine
cannot reorder what the test expects."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of waiting for it."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_SkippingSelector(self))

    def time(self) -> float:
        return self.now


class _SkippingSelector(selectors.DefaultSelector):
    def __init__(self, loop: _VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:  # no timer at all: only I/O can wake the loop
            return super().select(None)
        ready = super().select(0)
        if not ready:
            self._loop.now += timeout
        return ready


def run_virtual(coroutine: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=_VirtualClockLoop) as runner:
        return runner.run(coroutine)
