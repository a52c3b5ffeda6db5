"""A job's end as the outcome's write stored it: what a stream's final event says, handed to
the streams waiting on this replica so that they need not read the job back."""

from __future__ import annotations

from dataclasses import dataclass

from qruntime.domain.job import JobReason, JobStatus

#: A result up to this size rides on the final item, so a client needs no second request.
INLINE_RESULT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class JobEnd:
    status: JobStatus
    reason: JobReason | None
    error_message: str | None
    #: The stored result text of a DONE job if it rides on the final event (see inline_result).
    result: str | None
    #: The job's ``interim_count`` in the outcome's transaction: no interim comes after it.
    last_seq: int


def inline_result(status: JobStatus, result: str | None) -> str | None:
    """The stored result, if the final event carries it: a DONE job's, up to the size."""
    if status is not JobStatus.DONE or result is None:
        return None
    return result if len(result) <= INLINE_RESULT_MAX_BYTES else None
