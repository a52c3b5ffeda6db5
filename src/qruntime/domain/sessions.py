"""Sessions and batches: a user's group of jobs on one backend, with its own state and clock.

A *session* runs its jobs one at a time, in submission order; a *batch* starts its jobs in
submission order and lets them run side by side. Both end at their ``max_time`` (counted
from the start of their first job, as IBM counts it), when closed and drained, or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

#: A group's ``max_time`` when none is asked for, and the most one may ask for (IBM's 8 h).
DEFAULT_MAX_TIME = MAX_MAX_TIME = 8 * 3600


class SessionMode(StrEnum):
    """How a group's jobs run."""

    #: One job at a time, each after the one submitted before it has ended.
    SESSION = "session"
    #: Started in submission order; several may run at once.
    BATCH = "batch"


class SessionState(StrEnum):
    """Where a group is, in IBM's words."""

    #: Created; none of its jobs has started yet.
    OPEN = "open"
    #: A job of it has started, and some of its jobs are queued or running.
    ACTIVE = "active"
    #: Started and still accepting jobs, but none is queued or running now.
    INACTIVE = "inactive"
    #: Accepts no more jobs and has none left to run: closed and drained, or out of time.
    CLOSED = "closed"
    #: Cancelled by its owner: its queued and running jobs were cancelled.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SessionClock:
    """What a group's state is computed from: its stored moments and its pending jobs."""

    activated_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    pending_jobs: int

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def accepting_jobs(self, now: datetime) -> bool:
        return self.closed_at is None and self.cancelled_at is None and not self.expired(now)

    def state(self, now: datetime) -> SessionState:
        if self.cancelled_at is not None:
            return SessionState.CANCELLED
        if self.expired(now) or (self.closed_at is not None and not self.pending_jobs):
            return SessionState.CLOSED
        if self.activated_at is None:
            return SessionState.OPEN
        return SessionState.ACTIVE if self.pending_jobs else SessionState.INACTIVE
