"""What a running job reports, in the order it happens; the last event is always terminal.

User data (interim messages, results) stays as RuntimeEncoder JSON text end to end, so the
supervisor and storage never decode a user's objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from qruntime.domain.job import JobReason, JobStatus


@dataclass(frozen=True)
class InterimEvent:
    """One ``user_messenger.publish`` call; ``seq`` counts from 1 within the job."""

    seq: int
    data: str
    type: ClassVar[str] = "interim"
    terminal: ClassVar[bool] = False


@dataclass(frozen=True)
class LogEvent:
    """One line the program wrote to stdout or stderr (without its newline)."""

    text: str
    stream: Literal["stdout", "stderr"] = "stdout"
    type: ClassVar[str] = "log"
    terminal: ClassVar[bool] = False


@dataclass(frozen=True)
class ResultEvent:
    """The program's final result, encoded by RuntimeEncoder."""

    data: str
    type: ClassVar[str] = "result"
    terminal: ClassVar[bool] = True
    status: ClassVar[JobStatus] = JobStatus.DONE


@dataclass(frozen=True)
class ErrorEvent:
    """The job failed; ``message`` says what happened (a traceback for program errors)."""

    message: str
    reason: JobReason = JobReason.PROGRAM_FAILED
    type: ClassVar[str] = "error"
    terminal: ClassVar[bool] = True
    status: ClassVar[JobStatus] = JobStatus.ERROR


@dataclass(frozen=True)
class CancelledEvent:
    """The job was stopped on purpose: by a user or by its time limit."""

    reason: JobReason
    message: str = ""
    type: ClassVar[str] = "cancelled"
    terminal: ClassVar[bool] = True
    status: ClassVar[JobStatus] = JobStatus.CANCELLED


JobEvent = InterimEvent | LogEvent | ResultEvent | ErrorEvent | CancelledEvent
TerminalEvent = ResultEvent | ErrorEvent | CancelledEvent

_EVENT_TYPES: dict[str, type] = {
    cls.type: cls for cls in (InterimEvent, LogEvent, ResultEvent, ErrorEvent, CancelledEvent)
}


def event_to_json(event: JobEvent) -> dict[str, Any]:
    """Plain-JSON form of an event (user data stays a RuntimeEncoder string)."""
    return {"type": event.type, **asdict(event)}


def event_from_json(payload: dict[str, Any]) -> JobEvent:
    """Inverse of :func:`event_to_json`; raises ``ValueError`` on anything unexpected."""
    fields = dict(payload)
    cls = _EVENT_TYPES.get(fields.pop("type", None))
    if cls is None:
        raise ValueError(f"unknown event type {payload.get('type')!r}")
    if "reason" in fields:
        fields["reason"] = JobReason(fields["reason"])
    return cls(**fields)


__all__ = [
    "CancelledEvent",
    "ErrorEvent",
    "InterimEvent",
    "JobEvent",
    "LogEvent",
    "ResultEvent",
    "TerminalEvent",
    "event_from_json",
    "event_to_json",
]
