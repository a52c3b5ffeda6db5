"""The one interface the scheduler uses to run jobs; local processes now, Ray later."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from qruntime.domain.events import JobEvent
from qruntime.execution.request import JobRequest


class Executor(ABC):
    """Runs jobs in isolation and reports what happens as events."""

    @abstractmethod
    def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        """Start the job and yield its events; the last one is always terminal.

        Closing the iterator early stops the job.
        """

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Stop a running job (it ends with ``CANCELLED BY USER``); False if it is not running."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Get ready for jobs (a warm pool forks its workers); jobs may arrive before it ends."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources held across jobs (pools, connections)."""
