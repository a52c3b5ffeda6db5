"""Wire types of ``/sessions`` (docs/api.md): sessions and batches, built from storage records."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from qruntime.api.schemas import _Request, iso
from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.sessions import MAX_MAX_TIME, SessionMode, SessionState
from qruntime.storage import StoredJob
from qruntime.storage.records import StoredJobGroup


class SessionCreate(_Request):
    mode: SessionMode = SessionMode.SESSION
    backend: str = Field("aer_simulator", max_length=100)
    max_time: int | None = Field(
        None, ge=1, le=MAX_MAX_TIME, description="Seconds, from its first job's start (8 h)."
    )


class SessionJob(BaseModel):
    """One of a session's jobs, in submission order."""

    id: str
    program_id: str
    status: JobStatus
    reason: JobReason | None
    creation_date: str
    start_date: str | None
    end_date: str | None

    @classmethod
    def of(cls, job: StoredJob) -> SessionJob:
        return cls(
            id=job.id,
            program_id=job.program_id,
            status=job.status,
            reason=job.reason,
            creation_date=iso(job.created_at) or "",
            start_date=iso(job.started_at),
            end_date=iso(job.ended_at),
        )


class SessionPublic(BaseModel):
    id: str
    owner: str
    mode: SessionMode
    backend: str
    state: SessionState
    accepting_jobs: bool
    max_time: int
    creation_date: str
    activation_date: str | None = Field(description="When its first job started.")
    expiry_date: str | None = Field(description="activation_date + max_time.")
    close_date: str | None
    cancel_date: str | None
    job_count: int
    pending_jobs: int = Field(description="Its jobs queued or running now.")
    usage_seconds: float
    jobs: list[SessionJob] | None = Field(
        default=None, description="Its jobs in submission order (GET /sessions/{id} only)."
    )

    @classmethod
    def of(
        cls, group: StoredJobGroup, now: datetime, jobs: list[StoredJob] | None = None
    ) -> SessionPublic:
        clock = group.clock
        return cls(
            id=group.id,
            owner=group.owner_name,
            mode=group.mode,
            backend=group.backend,
            state=clock.state(now),
            accepting_jobs=clock.accepting_jobs(now),
            max_time=group.max_time,
            creation_date=iso(group.created_at) or "",
            activation_date=iso(group.activated_at),
            expiry_date=iso(group.expires_at),
            close_date=iso(group.closed_at),
            cancel_date=iso(group.cancelled_at),
            job_count=group.jobs,
            pending_jobs=group.pending_jobs,
            usage_seconds=group.usage_seconds(now),
            jobs=None if jobs is None else [SessionJob.of(job) for job in jobs],
        )


class SessionsPublic(BaseModel):
    sessions: list[SessionPublic]
    total: int
