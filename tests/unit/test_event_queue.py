"""The queue between a worker's pipe pumps and the job's consumer: order kept, a bound that
makes producers wait, and a consumer woken once per batch, not once per interim result.

Timed tests run on a virtual-clock loop (``tests/virtual_clock.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import pairwise

import pytest

from qruntime.domain.events import InterimEvent, JobEvent, LogEvent, ResultEvent
from qruntime.execution.event_queue import SINGLE_EVENTS, BatchShape, EventQueue
from virtual_clock import run_virtual

FAST = BatchShape(max_batch=512, min_interval=0.05, fast_gap=0.005)


def _interim(seq: int) -> InterimEvent:
    return InterimEvent(seq, f'{{"i": {seq}}}')


class _CountingQueue(EventQueue):
    """Counts the consumer's sleeps: each one is a wake-up of the consumer's task."""

    sleeps = 0

    async def _wait(self, deadline: float | None, room: int | None) -> None:
        self.sleeps += 1
        await super()._wait(deadline, room)


async def _produce(queue: EventQueue, events: Sequence[tuple[float, JobEvent]]) -> None:
    for delay, event in events:
        await asyncio.sleep(delay)
        await queue.put(event)


async def _consume(queue: EventQueue, count: int) -> list[tuple[float, list[JobEvent]]]:
    """(when, batch) for each batch, until ``count`` events were taken."""
    loop = asyncio.get_running_loop()
    seen: list[tuple[float, list[JobEvent]]] = []
    while sum(len(batch) for _, batch in seen) < count:
        batch = await queue.take_batch()
        seen.append((loop.time(), batch))
    return seen


def test_a_fast_stream_wakes_the_consumer_once_per_batch() -> None:
    """100 results 2 ms apart: the same batches as ``batched`` makes, for 5 sleeps in all."""
    events = [(0.0, _interim(1))] + [(0.002, _interim(n)) for n in range(2, 101)]

    async def run() -> tuple[list[tuple[float, list[JobEvent]]], int]:
        queue = _CountingQueue(1024, FAST)
        producer = asyncio.create_task(_produce(queue, events))
        seen = await _consume(queue, len(events))
        await producer
        return seen, queue.sleeps

    seen, sleeps = run_virtual(run())
    batches = [batch for _, batch in seen]
    assert [event for batch in batches for event in batch] == [event for _, event in events]
    assert [len(batch) for batch in batches] == [1, 24, 25, 25, 25]
    # One sleep for the first result, then per batch one for its first result (it waits
    # empty) and one until its interval ends: not one per result.
    assert sleeps <= 2 * len(batches)


def test_an_event_that_is_not_an_interim_ends_the_batch_when_it_arrives() -> None:
    """A line of output 10 ms into a 50 ms interval: the batch goes then, the line after it."""
    line = LogEvent("hello", "stdout")
    events = [(0.0, _interim(1)), (0.002, _interim(2)), (0.002, _interim(3))]
    events += [(0.006, line), (0.002, _interim(4)), (0.0, ResultEvent('"done"'))]

    async def run() -> list[tuple[float, list[JobEvent]]]:
        queue = EventQueue(1024, FAST)
        producer = asyncio.create_task(_produce(queue, events))
        seen = await _consume(queue, len(events))
        await producer
        return seen

    seen = run_virtual(run())
    assert [batch for _, batch in seen] == [
        [_interim(1)],
        [_interim(2), _interim(3)],
        [line],
        [_interim(4)],
        [ResultEvent('"done"')],
    ]
    assert seen[1][0] == pytest.approx(0.010, abs=1e-9)  # when the line came, not at 0.05


def test_a_full_batch_goes_before_its_interval_ends() -> None:
    events = [(0.0, _interim(1))] + [(0.001, _interim(n)) for n in range(2, 12)]
    shape = BatchShape(max_batch=4, min_interval=1.0, fast_gap=0.005)

    async def run() -> list[tuple[float, list[JobEvent]]]:
        queue = EventQueue(1024, shape)
        producer = asyncio.create_task(_produce(queue, events))
        seen = await _consume(queue, 5)
        producer.cancel()
        return seen

    seen = run_virtual(run())
    assert [batch for _, batch in seen] == [[_interim(1)], [_interim(n) for n in range(2, 6)]]
    assert seen[1][0] == pytest.approx(0.005, abs=1e-9)  # when the fourth came, not after 1 s


async def test_a_full_queue_makes_the_producer_wait_and_loses_nothing() -> None:
    queue = EventQueue(2, SINGLE_EVENTS)
    events: list[JobEvent] = [_interim(n) for n in range(1, 6)]
    producer = asyncio.create_task(_produce(queue, [(0.0, event) for event in events]))
    await asyncio.sleep(0.01)
    assert not producer.done()  # two queued, the third waits for room
    taken = [event for _ in events for event in await queue.take_batch()]
    await producer
    assert taken == events


async def test_after_finish_the_consumer_gets_what_is_queued_then_the_error() -> None:
    queue = EventQueue(8, FAST)
    await queue.put(_interim(1))
    await queue.put(_interim(2))
    queue.finish(RuntimeError("executor broke"))
    assert await queue.take_batch() == [_interim(1), _interim(2)]
    with pytest.raises(RuntimeError, match="executor broke"):
        await queue.take_batch()
    clean = EventQueue(8, FAST)
    waiting = asyncio.create_task(clean.take_batch())
    await asyncio.sleep(0)
    clean.finish()
    assert await waiting == []


def test_while_a_fast_stream_lasts_the_interval_doubles_up_to_its_bound() -> None:
    """300 results 2 ms apart, then 5 at 30 ms: intervals of 20, 40, 80, then 100 ms, and none
    once the stream slowed (each of those goes alone, as it arrives)."""
    shape = BatchShape(max_batch=512, min_interval=0.02, fast_gap=0.005, max_interval=0.1)
    events = [(0.0, _interim(1))] + [(0.002, _interim(n)) for n in range(2, 301)]
    events += [(0.03, _interim(n)) for n in range(301, 306)]

    async def run() -> list[tuple[float, list[JobEvent]]]:
        queue = EventQueue(1024, shape)
        producer = asyncio.create_task(_produce(queue, events))
        seen = await _consume(queue, len(events))
        await producer
        return seen

    seen = run_virtual(run())
    assert [event for _, batch in seen for event in batch] == [event for _, event in events]
    when = [0.0, 0.02, 0.06, 0.14, 0.24, 0.34, 0.44, 0.54, 0.64, 0.658, 0.688, 0.718, 0.748]
    assert [t for t, _ in seen] == pytest.approx(when, abs=1e-9)
    # The last fast batch takes the first slow result (it came 12 ms before the interval's end).
    assert [len(batch) for _, batch in seen] == [1, 9, 20, 40, 50, 50, 50, 50, 31, 1, 1, 1, 1]


def test_without_a_bound_the_interval_stays_the_minimum() -> None:
    """``max_interval`` None (the default): batches 20 ms apart however long the stream lasts."""
    shape = BatchShape(max_batch=512, min_interval=0.02, fast_gap=0.005)
    events = [(0.0, _interim(1))] + [(0.002, _interim(n)) for n in range(2, 101)]

    async def run() -> list[tuple[float, list[JobEvent]]]:
        queue = EventQueue(1024, shape)
        producer = asyncio.create_task(_produce(queue, events))
        seen = await _consume(queue, len(events))
        await producer
        return seen

    seen = run_virtual(run())
    times = [t for t, _ in seen]
    assert [b - a for a, b in pairwise(times[1:])] == pytest.approx(
        [0.02] * (len(times) - 2), abs=1e-9
    )


def test_a_producer_may_hold_back_while_a_fast_batch_fills_and_read_all_in_time() -> None:
    """A pump that sleeps whenever ``hold_until`` lets it (as the event pipe's does, the results
    waiting in the pipe meanwhile) wakes about once per batch, and every result it read at
    the end of a hold goes in the batch that was filling: the same batches as reading each."""
    shape = BatchShape(max_batch=512, min_interval=0.02, fast_gap=0.005, max_interval=0.1)
    arrivals = [0.002 * n for n in range(200)]  # when each result is in the pipe

    async def run(hold: bool) -> tuple[list[list[JobEvent]], int]:
        loop = asyncio.get_running_loop()
        queue = EventQueue(1024, shape)
        wakeups = 0

        async def pump() -> None:
            nonlocal wakeups
            sent = 0
            while sent < len(arrivals):
                wakeups += 1
                now = loop.time()
                if arrivals[sent] > now:  # nothing in the pipe: sleep until the next result
                    await asyncio.sleep(arrivals[sent] - now)
                    continue
                while sent < len(arrivals) and arrivals[sent] <= loop.time():
                    await queue.put(_interim(sent + 1))
                    sent += 1
                until = queue.hold_until(10, 16 * 1024) if hold else None
                if until is not None:
                    await asyncio.sleep(until - loop.time())
            queue.finish()

        producer = asyncio.create_task(pump())
        batches = []
        while batch := await queue.take_batch():
            batches.append(batch)
        await producer
        return batches, wakeups

    held, held_wakeups = run_virtual(run(True))
    each, each_wakeups = run_virtual(run(False))
    assert [e for batch in held for e in batch] == [_interim(n) for n in range(1, 201)]
    assert [len(batch) for batch in held] == [len(batch) for batch in each]
    # Each held batch: one wake-up for the results held, a few for those of its last 5 ms.
    assert held_wakeups <= 8 * len(held)
    assert held_wakeups < each_wakeups / 3


def test_no_hold_for_results_that_might_not_fit_in_the_pipe_or_outside_a_fast_batch() -> None:
    shape = BatchShape(max_batch=512, min_interval=0.02, fast_gap=0.005, max_interval=0.1)

    async def run() -> tuple[float | None, float | None, float | None]:
        queue = EventQueue(1024, shape)
        idle = queue.hold_until(10, 16 * 1024)  # nobody is filling a batch
        consumer = asyncio.create_task(_consume(queue, 4))
        for n in range(1, 4):  # at 0, 2 and 4 ms: the second batch is due at 20 ms
            await queue.put(_interim(n))
            await asyncio.sleep(0.002)
        small = queue.hold_until(10, 16 * 1024)
        large = queue.hold_until(100_000, 16 * 1024)  # 6 of them would fill the pipe
        await queue.put(_interim(4))
        await consumer
        return idle, small, large

    idle, small, large = run_virtual(run())
    assert idle is None and large is None
    assert small == pytest.approx(0.015, abs=1e-9)  # 5 ms before the batch is due


def test_a_stream_fast_but_under_twice_the_fast_pace_keeps_the_minimum_interval() -> None:
    """6 ms apart (166/s) is fast for an 8 ms ``fast_gap``, not twice as fast: 20 ms batches."""
    shape = BatchShape(max_batch=512, min_interval=0.02, fast_gap=0.008, max_interval=0.1)
    events = [(0.0, _interim(1))] + [(0.006, _interim(n)) for n in range(2, 101)]

    async def run() -> list[tuple[float, list[JobEvent]]]:
        queue = EventQueue(1024, shape)
        producer = asyncio.create_task(_produce(queue, events))
        seen = await _consume(queue, len(events))
        await producer
        return seen

    seen = run_virtual(run())
    assert [event for _, batch in seen for event in batch] == [event for _, event in events]
    gaps = [b - a for a, b in pairwise([t for t, _ in seen][2:])]
    assert gaps and max(gaps) <= 0.02 + 0.006 + 1e-9  # at most one result's gap late


def test_no_hold_after_a_flood_whose_producer_just_waited() -> None:
    """A flood's last batch came far faster than one long gap (the producer waited for room)
    suggests: holding now would fill the pipe and block the worker."""
    shape = BatchShape(max_batch=200, min_interval=0.02, fast_gap=0.008, max_interval=0.1)

    async def run() -> tuple[float | None, float | None]:
        queue = EventQueue(1024, shape)
        consumer = asyncio.create_task(_consume(queue, 403))
        for n in range(1, 402):  # 20,000/s: batches of 200 in 10 ms
            await queue.put(_interim(n))
            await asyncio.sleep(0.00005)
        await asyncio.sleep(0.002)  # one long gap
        await queue.put(_interim(402))
        await asyncio.sleep(0)
        after_flood = queue.hold_until(65, 16 * 1024)
        slow = queue.hold_until(65, 10**9)  # with room for anything, it would hold
        await queue.put(_interim(403))
        await consumer
        return after_flood, slow

    after_flood, slow = run_virtual(run())
    assert after_flood is None
    assert slow is not None
