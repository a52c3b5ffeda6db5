"""Group a job's interim results that are already waiting, so that one transaction stores them.

A program that publishes thousands of results a second would otherwise wait on one database
commit per result; a batch is only what has arrived meanwhile, so nothing waits for company.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from qruntime.domain.events import InterimEvent, JobEvent

#: Largest batch; also how many events may wait between the executor and the recorder.
MAX_BATCH = 512


class _End:
    def __init__(self, error: BaseException | None = None):
        self.error = error


async def batched(events: AsyncIterator[JobEvent]) -> AsyncIterator[list[JobEvent]]:
    """Yield lists of consecutive waiting InterimEvents, and every other event on its own.

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

    task = asyncio.create_task(pump())
    held: JobEvent | _End | None = None
    try:
        while True:
            item = held if held is not None else await queue.get()
            held = None
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            batch = [item]
            while isinstance(item, InterimEvent) and len(batch) < MAX_BATCH and not queue.empty():
                item = queue.get_nowait()
                if not isinstance(item, InterimEvent):
                    held = item  # the next batch begins with it
                    break
                batch.append(item)
            yield batch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
