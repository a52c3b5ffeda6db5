"""Group a job's interim results so that one transaction stores them.

A program that publishes thousands of results a second would otherwise cost a database commit
and a wake-up of every reader per result. A batch is what has arrived meanwhile. While results
come in fast (on average less than ``fast_gap`` apart), a batch also waits until
``min_interval`` has passed since the last one began: that bounds the writes per job, and a
result published at a slower, steady pace never waits. Time is the event loop's clock
(``loop.time()``, monotonic), so a loop with a virtual clock runs it deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from qruntime.domain.events import InterimEvent, JobEvent

#: Largest batch; also how many events may wait between the executor and the recorder.
MAX_BATCH = 512
#: While results come in fast, a job's interim batches start at least this far apart.
MIN_INTERVAL = 0.02
#: Results that arrive on average this close together make a fast stream (125/s and more).
FAST_GAP = 0.008
#: Weight of the newest gap in the running average of gaps between results.
GAP_WEIGHT = 0.25


class _End:
    def __init__(self, error: BaseException | None = None):
        self.error = error


async def batched(
    events: AsyncIterator[JobEvent],
    *,
    min_interval: float = MIN_INTERVAL,
    fast_gap: float = FAST_GAP,
) -> AsyncIterator[list[JobEvent]]:
    """Yield lists of consecutive InterimEvents, and every other event on its own.

    Closing this iterator closes ``events`` (for an executor: stops the job).
    """
    queue: asyncio.Queue[JobEvent | _End] = asyncio.Queue(MAX_BATCH)
    clock = asyncio.get_running_loop().time

    fast = False  # the running average of the gaps between interims is under fast_gap
    average_gap: float | None = None
    last_arrival: float | None = None

    async def pump() -> None:
        nonlocal fast, average_gap, last_arrival
        try:
            async for event in events:
                if isinstance(event, InterimEvent):
                    now = clock()
                    if last_arrival is not None:
                        gap = now - last_arrival
                        average_gap = (
                            gap
                            if average_gap is None
                            else (1 - GAP_WEIGHT) * average_gap + GAP_WEIGHT * gap
                        )
                        fast = average_gap < fast_gap
                    last_arrival = now
                await queue.put(event)
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put(_End(exc))
            return
        await queue.put(_End())

    async def next_within(deadline: float) -> JobEvent | _End | None:
        """The next waiting event, or one that arrives before ``deadline``; None if none does."""
        if not queue.empty():
            return queue.get_nowait()
        if deadline <= clock():
            return None
        # timeout_at, not wait_for: on 3.11 wait_for makes a task per call, i.e. per result
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                return await queue.get()  # a get cut short leaves its item in the queue
        return None

    task = asyncio.create_task(pump())
    held: JobEvent | _End | None = None
    last_interims = -min_interval
    try:
        while True:
            item = held if held is not None else await queue.get()
            held = None
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            batch = [item]
            if isinstance(item, InterimEvent):
                deadline = last_interims + min_interval if fast else 0.0
                while len(batch) < MAX_BATCH:
                    following = await next_within(deadline)
                    if following is None:
                        break
                    if not isinstance(following, InterimEvent):
                        held = following  # the next batch begins with it; this one goes now
                        break
                    batch.append(following)
                last_interims = clock()
            yield batch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
