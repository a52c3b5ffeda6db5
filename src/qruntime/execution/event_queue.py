"""A job's events between the pumps of its worker's pipes and its one consumer.

Bounded like an ``asyncio.Queue`` (a full queue makes the pumps wait, so the worker's pipe
fills and the program blocks), but a consumer taking a batch sleeps until the batch is due
instead of waking for every interim result: while results come in fast, a batch costs the
consumer one wake-up, not one per result (docs/performance.md, "A leaner hot path").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from qruntime.domain.events import InterimEvent, JobEvent


@dataclass(frozen=True)
class BatchShape:
    """How interim results are grouped; the service layer's choice (``event_batches``)."""

    #: Largest batch.
    max_batch: int = 512
    #: While results come in fast, a job's interim batches start at least this far apart.
    min_interval: float = 0.02
    #: Results that arrive on average this close together make a fast stream.
    fast_gap: float = 0.008
    #: Weight of the newest gap in the running average of gaps between results.
    gap_weight: float = 0.25
    #: While results come at least twice as fast as ``fast_gap``, the interval doubles with
    #: each batch up to this (None: it stays ``min_interval``): fewer, larger batches cost
    #: less per result.
    max_interval: float | None = None


#: A held producer reads on this long before the batch is due (at most a quarter interval),
#: so that what it finds is read in time for that batch.
HOLD_MARGIN = 0.005

#: Every event on its own: what :meth:`EventQueue.take_batch` gives an event-by-event reader.
SINGLE_EVENTS = BatchShape(max_batch=1)


class EventQueue:
    """FIFO of one job's events; any number of producers on the loop, one consumer."""

    def __init__(self, maxsize: int, shape: BatchShape = SINGLE_EVENTS):
        self._items: deque[JobEvent] = deque()
        self._maxsize = max(1, maxsize)
        self._shape = shape
        self._loop = asyncio.get_running_loop()
        self._getter: asyncio.Future[None] | None = None
        #: While the consumer fills a batch, it wants waking only for this many more results.
        self._room: int | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._average_gap: float | None = None
        self._last_arrival: float | None = None
        self._last_batch = -shape.min_interval
        self._interval = shape.min_interval
        #: While the consumer fills a fast batch: when that batch is due.
        self._due: float | None = None
        #: Results per second in the last batch (since the one before it began).
        self._rate = 0.0
        self._finished = False
        self._error: BaseException | None = None

    async def put(self, event: JobEvent) -> None:
        """Queue ``event``, first waiting while the queue is full."""
        while len(self._items) >= self._maxsize:
            waiter = self._loop.create_future()
            self._putters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._putters:
                    self._putters.remove(waiter)
        if isinstance(event, InterimEvent):
            self._arrived()
        self._items.append(event)
        getter = self._getter
        if getter is not None and not getter.done():
            room = self._room  # while it waits for room, everything queued is an interim
            if room is None or not isinstance(event, InterimEvent) or len(self._items) >= room:
                getter.set_result(None)

    def finish(self, error: BaseException | None = None) -> None:
        """Nothing more comes; the consumer gets what is queued, then ``error`` if one."""
        self._finished, self._error = True, error
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    async def take_batch(self) -> list[JobEvent]:
        """The next batch: consecutive interim results, or any other event alone; ``[]`` once
        :meth:`finish` was called and all is taken (or the error it was given, raised).

        A batch is what waits now; while results come in fast it also takes what arrives until
        ``min_interval`` after the previous batch began.
        """
        while not self._items:
            if self._finished:
                if self._error is not None:
                    raise self._error
                return []
            await self._wait(None, None)
        first = self._take()
        if not isinstance(first, InterimEvent):
            return [first]
        shape = self._shape
        fast = self._average_gap is not None and self._average_gap < shape.fast_gap
        deadline = self._last_batch + self._interval if fast else 0.0
        batch = [first]
        while len(batch) < shape.max_batch:
            while self._items and len(batch) < shape.max_batch:
                if not isinstance(self._items[0], InterimEvent):
                    break  # the next batch begins with it; this one goes now
                batch.append(self._take())  # type: ignore[arg-type]
            if self._items or self._finished or self._loop.time() >= deadline:
                break
            self._due = deadline
            try:
                await self._wait(deadline, shape.max_batch - len(batch))
            finally:
                self._due = None
        now = self._loop.time()
        self._rate = len(batch) / max(now - self._last_batch, 1e-6)
        self._pace(fast and self._rate * shape.fast_gap >= 2)
        self._last_batch = now
        return batch

    def hold_until(self, event_bytes: int, room_bytes: int) -> float | None:
        """While the consumer fills a fast batch, the loop time until which a producer may leave
        what follows unread (a little before the batch is due), or None for "read on".

        Results left in the worker's pipe meanwhile cost no wake-up each; they are read together
        before the batch goes. None also when results of ``event_bytes`` arriving at the current
        pace until then (the average gap's, or the last batch's if faster: a flood's gaps look
        long after the producer waited for room) might not fit in ``room_bytes`` (the pipe's
        buffer).
        """
        due, gap = self._due, self._average_gap
        if due is None or gap is None:
            return None
        until = due - min(HOLD_MARGIN, self._interval / 4)
        left = until - self._loop.time()
        rate = max(1 / max(gap, 1e-6), self._rate)  # a flood's last batch: far above its gaps
        if left <= 0 or (left * rate + 1) * event_bytes > room_bytes:
            return None
        return until

    def _pace(self, faster: bool) -> None:
        """The next fast batch's interval: twice this one's while results come at twice the
        fast pace or more (250/s for the service's shape), else the minimum."""
        shape = self._shape
        if faster and shape.max_interval is not None:
            self._interval = min(shape.max_interval, max(shape.min_interval, 2 * self._interval))
        else:
            self._interval = shape.min_interval

    def _arrived(self) -> None:
        now = self._loop.time()
        if self._last_arrival is not None:
            gap = now - self._last_arrival
            weight = self._shape.gap_weight
            average = self._average_gap
            self._average_gap = gap if average is None else (1 - weight) * average + weight * gap
        self._last_arrival = now

    def _take(self) -> JobEvent:
        event = self._items.popleft()
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
                break
        return event

    async def _wait(self, deadline: float | None, room: int | None) -> None:
        """Sleep until an event arrives (``room`` set: a non-interim one, or ``room`` interims),
        or until ``deadline``."""
        getter = self._loop.create_future()
        self._getter, self._room = getter, room
        timer = None
        if deadline is not None:
            timer = self._loop.call_at(deadline, _wake, getter)
        try:
            await getter
        finally:
            self._getter, self._room = None, None
            if timer is not None:
                timer.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def batched_events(
    events: AsyncIterator[JobEvent], shape: BatchShape
) -> AsyncIterator[list[JobEvent]]:
    """Any source of events in batches as :meth:`EventQueue.take_batch` makes them; an error
    from ``events`` is raised after what came before it. Closing this closes ``events``."""
    queue = EventQueue(shape.max_batch, shape)

    async def pump() -> None:
        try:
            async for event in events:
                await queue.put(event)
        except Exception as exc:  # handed to the consumer, raised there
            queue.finish(exc)
            return
        queue.finish()

    task = asyncio.create_task(pump())
    try:
        while batch := await queue.take_batch():
            yield batch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _close(events)


async def one_at_a_time(batches: AsyncIterator[list[JobEvent]]) -> AsyncIterator[JobEvent]:
    """The events of ``batches`` in turn; closing early closes ``batches`` (which stops the job)."""
    try:
        async for batch in batches:
            for event in batch:
                yield event
    finally:
        await _close(batches)


async def _close(source: AsyncIterator[object]) -> None:
    """Close an async generator early (so its ``finally`` runs now); other iterators have none."""
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
