"""Where an executor that records its own jobs' events (a Ray agent) sends them.

The service layer builds the sink (on a database of its choosing) and hands the executor a
picklable factory for it, so that execution never imports storage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from qruntime.domain.events import JobEvent, TerminalEvent


class JobEventSink(Protocol):
    async def consume(self, job_id: str, events: AsyncIterator[JobEvent]) -> TerminalEvent | None:
        """Store every event of the job in order; return its outcome once stored.

        None when the outcome could not be stored because the job had already ended (someone
        else decided it); the caller then stops the job.
        """

    async def begin(self, job_id: str, node: str) -> bool:
        """Record that ``node`` starts the job; False when another one did already, or the job
        is not running any more: then it must not be started (a job runs once)."""

    async def record_outcome(self, job_id: str, event: TerminalEvent) -> bool:
        """Store an outcome the executor decided (the job's node was lost); False if it ended."""


#: Builds a sink in the process that runs jobs; it is pickled to get there.
SinkFactory = Callable[[], JobEventSink]
