"""The writer a Ray agent gets from the service layer: a JobRecorder on its own connection to
the service's database, built on the agent's node from a picklable factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from qruntime.domain.events import JobEvent, TerminalEvent
from qruntime.service.event_batches import MAX_INTERVAL, batched
from qruntime.service.job_recorder import JobRecorder
from qruntime.storage import Database


class RecordingSink:
    """Stores a job's events as a replica's scheduler would (batches, buffered output)."""

    def __init__(self, recorder: JobRecorder):
        self._recorder = recorder

    async def consume(self, job_id: str, events: AsyncIterator[JobEvent]) -> TerminalEvent | None:
        outcome: TerminalEvent | None = None
        try:
            async for batch in batched(events, max_interval=MAX_INTERVAL):
                first = batch[0]
                if first.terminal:
                    stored = await self._recorder.record_outcome(job_id, first)  # type: ignore[arg-type]
                    outcome = first if stored else None  # type: ignore[assignment]
                else:
                    await self._recorder.record(job_id, batch)
        finally:
            await self._recorder.close(job_id)
        return outcome

    async def begin(self, job_id: str, node: str) -> bool:
        return await self._recorder.begin(job_id, node)

    async def record_outcome(self, job_id: str, event: TerminalEvent) -> bool:
        return await self._recorder.record_outcome(job_id, event)


@dataclass(frozen=True)
class DatabaseSinkFactory:
    """Pickled to each Ray node; there it connects to ``database_url`` itself."""

    database_url: str
    max_log_bytes: int

    def __call__(self) -> RecordingSink:
        return RecordingSink(
            JobRecorder(
                Database(self.database_url),
                None,  # nobody follows a job on the agent's node itself
                max_log_bytes=self.max_log_bytes,
                sender="ray-agent",  # its commits' signals wake every replica's streams
            )
        )
