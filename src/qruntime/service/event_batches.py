"""Group a job's interim results so that one transaction stores them.

A program that publishes thousands of results a second would otherwise cost a database commit
and a wake-up of every reader per result. A batch is what has arrived meanwhile; when results
come faster than one per ``min_interval``, a batch also waits out the rest of that interval,
which bounds the writes per job while a result published at a slower pace never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from qruntime.domain.events import InterimEvent, JobEvent

#: Largest batch; also how many events may wait between the executor and the recorder.
MAX_BATCH = 512
#: Interim batches of one job start at least this far apart (docs/performance.md).
MIN_INTERVAL = 0.01


class _End:
    def __init__(self, error: BaseException | None = None):
        self.error = error


async def batched(
    events: AsyncIterator[JobEvent], *, min_interval: float = MIN_INTERVAL
) -> AsyncIterator[list[JobEvent]]:
    """Yield lists of consecutive InterimEvents, and every other event on its own.

    Closing this iterator closes ``events`` (for an executor: stops the job).
    """
    queue: asyncio.Queue[JobEvent | _End] = asyncio.Queue(MAX_BATCH)

    async def pump() -> None:
        try:
            async for event in events:
                await queue.put(event)
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put(_End(exc))
            return
        await queue.put(_End())

    async def next_within(deadline: float) -> JobEvent | _End | None:
        """The next waiting event, or one that arrives before ``deadline``; None if none does."""
        if not queue.empty():
            return queue.get_nowait()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(queue.get(), remaining)
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
                deadline = last_interims + min_interval
                while len(batch) < MAX_BATCH:
                    following = await next_within(deadline)
                    if following is None:
                        break
                    if not isinstance(following, InterimEvent):
                        held = following  # the next batch begins with it; this one goes now
                        break
                    batch.append(following)
                last_interims = time.monotonic()
            yield batch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
