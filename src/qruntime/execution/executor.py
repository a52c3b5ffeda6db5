"""The one interface the scheduler uses to run jobs: local processes, or a Ray cluster."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import ClassVar

from qruntime.domain.events import JobEvent
from qruntime.execution.request import JobRequest


class Executor(ABC):
    """Runs jobs in isolation and reports what happens as events."""

    #: Shown for each replica in ``GET /health`` (``local``, ``ray``).
    kind: ClassVar[str] = "custom"
    #: Whether :meth:`adopt` can follow a job another replica started; if not, a replica that
    #: finds such an orphan ends it at once, without taking it over first.
    can_adopt: ClassVar[bool] = False

    @abstractmethod
    def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        """Start the job and yield its events; the last one is always terminal.

        Closing the iterator early stops the job.
        """

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Stop a running job (it ends with ``CANCELLED BY USER``); False if it is not running."""

    async def adopt(
        self, request: JobRequest, *, recorded_seq: int
    ) -> AsyncIterator[JobEvent] | None:
        """Take over a job that a replica now gone (its lease expired) started on this executor.

        Return its events from where the database stops, as :meth:`run` yields them: interim
        results after ``recorded_seq`` (the last one stored), output, then the outcome; the
        adopting replica records them and closing the iterator stops the job. An executor
        whose jobs store their own events may yield only what is left to store, or nothing:
        an iterator that ends without a terminal event leaves the job's row as it is.
        Return None when the job cannot be followed (the default: a local worker dies with
        the replica that started it); the job then ends ERROR / INTERRUPTED.
        """
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Get ready for jobs (a warm pool forks its workers); jobs may arrive before it ends."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources held across jobs (pools, connections)."""
