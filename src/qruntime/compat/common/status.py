"""A job's status as a dialect's clients spell it; a dialect lists its words once."""

from __future__ import annotations

from dataclasses import dataclass

from qruntime.domain.job import JobReason, JobStatus
from qruntime.storage import StoredJob


@dataclass(frozen=True)
class StatusWords:
    """The dialect's word per status, and per (status, reason) where the reason changes it."""

    by_status: dict[JobStatus, str]
    by_reason: dict[tuple[JobStatus, JobReason], str]

    def of(self, job: StoredJob) -> str:
        if job.reason is not None and (job.status, job.reason) in self.by_reason:
            return self.by_reason[(job.status, job.reason)]
        return self.by_status[job.status]

    def statuses_for(self, word: str) -> set[JobStatus]:
        """The qruntime statuses a dialect's word stands for (a filter in a job listing)."""
        found = {status for status, spelled in self.by_status.items() if spelled == word}
        by_reason = self.by_reason.items()
        return found | {status for (status, _), spelled in by_reason if spelled == word}
