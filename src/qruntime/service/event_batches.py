"""Group a job's interim results so that one transaction stores them.

A program that publishes thousands of results a second would otherwise cost a database commit
and a wake-up of every reader per result. A batch is what has arrived meanwhile. While results
come in fast (on average less than ``fast_gap`` apart), a batch also waits until
``min_interval`` has passed since the last one began: that bounds the writes per job, and a
result published at a slower, steady pace never waits. While a fast stream lasts, the interval
doubles with each batch up to ``MAX_INTERVAL``: each batch has a fixed cost on the server (its
write, its hand-off, every reader's wake-up and socket write), so fewer, larger ones cost less
per result. Time is the event loop's clock (``loop.time()``, monotonic), so a loop with a
virtual clock runs it deterministically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from qruntime.domain.events import JobEvent
from qruntime.execution.event_queue import BatchShape, batched_events

#: Largest batch; also how many events may wait between the executor and the recorder.
MAX_BATCH = 512
#: While results come in fast, a job's interim batches start at least this far apart.
MIN_INTERVAL = 0.02
#: While a fast stream lasts, the interval grows up to this: ten batches a second at most.
MAX_INTERVAL = 0.1
#: Results that arrive on average this close together make a fast stream (125/s and more).
FAST_GAP = 0.008
#: Weight of the newest gap in the running average of gaps between results.
GAP_WEIGHT = 0.25


#: The shape the scheduler and the Ray agents' recorders ask for.
BATCH_SHAPE = BatchShape(MAX_BATCH, MIN_INTERVAL, FAST_GAP, GAP_WEIGHT, MAX_INTERVAL)


def batched(
    events: AsyncIterator[JobEvent],
    *,
    min_interval: float = MIN_INTERVAL,
    fast_gap: float = FAST_GAP,
    max_interval: float | None = None,
) -> AsyncIterator[list[JobEvent]]:
    """Yield lists of consecutive InterimEvents, and every other event on its own.

    Closing this iterator closes ``events`` (for an executor: stops the job). An executor's
    own :meth:`~qruntime.execution.Executor.run_batches` may batch with fewer hand-offs.
    ``max_interval`` None keeps the interval at ``min_interval`` (the service passes
    ``MAX_INTERVAL``).
    """
    shape = BatchShape(MAX_BATCH, min_interval, fast_gap, GAP_WEIGHT, max_interval)
    return batched_events(events, shape)
