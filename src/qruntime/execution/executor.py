"""The one interface the scheduler uses to run jobs: local processes, or a Ray cluster."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from qruntime.domain.events import JobEvent
from qruntime.domain.resources import JobResources
from qruntime.execution.event_queue import BatchShape, batched_events
from qruntime.execution.request import JobRequest


class ExecutorUnavailable(RuntimeError):
    """The executor cannot start jobs now (its cluster is unreachable); they wait queued."""


class Executor(ABC):
    """Runs jobs in isolation and reports what happens as events."""

    #: Shown for each replica in ``GET /health`` (``local``, ``ray``).
    kind: ClassVar[str] = "custom"
    #: A job goes on running when the replica that started it dies (another one adopts it).
    jobs_outlive_replica: ClassVar[bool] = False
    #: Whether :meth:`adopt` can follow a job another replica started; if not, a replica that
    #: finds such an orphan ends it at once, without taking it over first.
    can_adopt: ClassVar[bool] = False
    #: A claimed job waits for :meth:`reserve` (a place on the cluster) before it starts: it
    #: stays QUEUED, held by the replica, until then.
    places_before_start: ClassVar[bool] = False

    @abstractmethod
    def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        """Start the job and yield its events; the last one is always terminal.

        Closing the iterator early stops the job.
        """

    def run_batches(self, request: JobRequest, shape: BatchShape) -> AsyncIterator[list[JobEvent]]:
        """:meth:`run`'s events grouped by ``shape``: consecutive interim results in one list,
        any other event alone. An executor that queues its events itself may batch them there.
        """
        return batched_events(self.run(request), shape)

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Stop a running job (it ends with ``CANCELLED BY USER``); False if it is not running."""

    async def adopt(
        self, request: JobRequest, *, recorded_seq: int, started_on: str | None = None
    ) -> AsyncIterator[JobEvent] | None:
        """Take over a job that a replica now gone (its lease expired) started on this executor.

        Return its events from where the database stops, as :meth:`run` yields them: interim
        results after ``recorded_seq`` (the last one stored), output, then the outcome; the
        adopting replica records them and closing the iterator stops the job. An executor
        whose jobs store their own events may yield only what is left to store, or nothing:
        an iterator that ends without a terminal event leaves the job's row as it is.
        ``started_on``: where the job's start was recorded (a Ray node's id), if it was.
        Return None when the job cannot be followed (the default: a local worker dies with
        the replica that started it); the job then ends ERROR / INTERRUPTED.
        """
        return None

    async def reserve(self, request: JobRequest) -> None:  # noqa: B027 - optional hook
        """Wait for a place for the job (its resources held for it); :meth:`run` then starts
        it there. Only called where ``places_before_start``."""

    async def unreserve(self, job_id: str) -> None:  # noqa: B027 - optional hook
        """Give up a place :meth:`reserve` is waiting for or got, unless the job started."""

    def room(self) -> Callable[[JobResources], bool]:
        """For one claim: whether a job asking for ``resources`` could be placed now (else it
        stays QUEUED), counting the jobs it said yes to before as placed."""
        return lambda resources: True

    def taken(self, resources: JobResources) -> None:  # noqa: B027 - optional hook
        """A claimed job will take ``resources``: later claims count them as used."""

    def unsatisfiable(self, resources: JobResources) -> str | None:
        """Why no machine of this executor could ever run a job asking for ``resources``."""
        return None

    def status(self) -> dict[str, Any]:
        """What ``GET /health`` shows of the executor: ``state`` (``up``/``down``) and more."""
        return {"kind": self.kind, "state": "up"}

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Get ready for jobs (a warm pool forks its workers); jobs may arrive before it ends."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources held across jobs (pools, connections)."""
