"""One long-lived thread that ends the SDK's blocked stream reads at their deadlines.

A timer thread per job (the drain's bound, a ``result(timeout=...)`` read in the caller's
thread) costs a thread's start and exit each time; this one thread serves every stream of the
process and wakes at most about once a second while alarms are pending, not once per job.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Alarm", "call_at"]

#: An alarm may ring this much late, so that one that falls due just after the thread's next
#: look needs no wake-up of its own.
SLACK_SECONDS = 0.05
#: While alarms are pending the thread looks at least this often, so that a new alarm due
#: within this time needs no wake-up either (a per-job deadline seldom does).
LOOK_EVERY_SECONDS = 1.0


class Alarm:
    """A callback due at a ``time.monotonic()`` instant; ``cancel()`` before then drops it."""

    __slots__ = ("_args", "_callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.cancelled = False
        self._callback = callback
        self._args = args

    def cancel(self) -> None:
        self.cancelled = True

    def ring(self) -> None:
        if not self.cancelled:
            self._callback(*self._args)


class _AlarmClock:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._looks_at = float("inf")  # when the thread looks next
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Alarm:
        alarm = Alarm(when, callback, args)
        with self._condition:
            heapq.heappush(self._pending, (when, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="qruntime-alarms", daemon=True
                )
                self._thread.start()
            elif when + SLACK_SECONDS < self._looks_at:
                self._condition.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._condition:
                due = self._take_due(time.monotonic())
                if not due:
                    self._wait()
                    continue
            for alarm in due:  # outside the lock: a callback may set the next alarm
                alarm.ring()

    def _take_due(self, now: float) -> list[Alarm]:
        due = []
        while self._pending and (self._pending[0][2].cancelled or self._pending[0][0] <= now):
            alarm = heapq.heappop(self._pending)[2]
            if not alarm.cancelled:
                due.append(alarm)
        return due

    def _wait(self) -> None:
        now = time.monotonic()
        if not self._pending:
            self._looks_at = float("inf")
            self._condition.wait()
            return
        self._looks_at = min(self._pending[0][0] + SLACK_SECONDS, now + LOOK_EVERY_SECONDS)
        self._condition.wait(max(0.0, self._looks_at - now))

    def forget_thread(self) -> None:
        """In a forked child: the thread did not survive the fork; the next alarm starts one."""
        self._condition = threading.Condition()
        self._thread = None
        self._looks_at = float("inf")


_clock = _AlarmClock()
os.register_at_fork(after_in_child=_clock.forget_thread)


def call_at(when: float, callback: Callable[..., Any], *args: Any) -> Alarm:
    """Run ``callback(*args)`` on the alarm thread at ``when`` (``time.monotonic()``), at most
    ``SLACK_SECONDS`` late, unless the returned alarm is cancelled first."""
    return _clock.call_at(when, callback, *args)
