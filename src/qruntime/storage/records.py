"""Immutable snapshots that repositories hand out, so no ORM object or session leaks upwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.sessions import SessionClock, SessionMode


@dataclass(frozen=True)
class StoredUser:
    id: int
    name: str
    role: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> StoredUser:
        return cls(id=row.id, name=row.name, role=row.role, created_at=row.created_at)


@dataclass(frozen=True)
class StoredToken:
    """A token's bookkeeping; the token itself is never stored, only its hash."""

    id: str
    user_id: int
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> StoredToken:
        return cls(
            id=row.id, user_id=row.user_id, created_at=row.created_at, revoked_at=row.revoked_at
        )


@dataclass(frozen=True)
class StoredProgram:
    id: str
    name: str
    owner_id: int
    owner_name: str
    description: str
    max_execution_time: int
    version: str | None
    spec: dict[str, Any]
    is_public: bool
    source: str
    created_at: datetime
    updated_at: datetime
    #: ``MainSignature.to_json()`` as recorded at upload; None for older programs.
    main_signature: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> StoredProgram:
        """``row`` carries the program's columns plus ``owner_name`` from the users table."""
        return cls(
            id=row.id,
            name=row.name,
            owner_id=row.owner_id,
            owner_name=row.owner_name,
            description=row.description,
            max_execution_time=row.max_execution_time,
            version=row.version,
            spec=dict(row.spec or {}),
            is_public=bool(row.is_public),
            source=row.source,
            created_at=row.created_at,
            updated_at=row.updated_at,
            main_signature=row.main_signature,
        )


@dataclass(frozen=True)
class StoredJob:
    """A job as persisted; ``inputs``/``result`` stay RuntimeEncoder JSON text, never decoded."""

    id: str
    program_id: str
    program_name: str
    owner_id: int
    owner_name: str
    backend: str
    status: JobStatus
    reason: JobReason | None
    error_message: str | None
    inputs: str
    source: str
    max_execution_time: float
    result: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    interim_count: int
    log_truncated: bool
    #: JobResources as JSON text; None: the defaults.
    resources: str | None = None
    #: The replica that runs (or last ran) the job, and until when its claim holds.
    owner_replica: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    #: The job's tags, in the order they were given.
    tags: tuple[str, ...] = ()
    #: The Ray node whose agent started the job; None before one did.
    started_on: str | None = None
    #: The session or batch it was submitted in; None: on its own.
    session_id: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> StoredJob:
        """``row`` carries the job's columns plus ``owner_name`` from the users table."""
        return cls(
            id=row.id,
            program_id=row.program_id,
            program_name=row.program_name,
            owner_id=row.owner_id,
            owner_name=row.owner_name,
            backend=row.backend,
            status=JobStatus(row.status),
            reason=JobReason(row.reason) if row.reason is not None else None,
            error_message=row.error_message,
            inputs=row.inputs,
            source=row.source,
            max_execution_time=float(row.max_execution_time),
            result=row.result,
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            interim_count=row.interim_count,
            log_truncated=bool(row.log_truncated),
            resources=row.resources,
            tags=_tags(getattr(row, "tags", None)),
            owner_replica=row.owner_replica,
            lease_expires_at=row.lease_expires_at,
            cancel_requested_at=row.cancel_requested_at,
            started_on=getattr(row, "started_on", None),
            session_id=getattr(row, "session_id", None),
        )


@dataclass(frozen=True)
class StoredJobGroup:
    """A session or batch, with counts of its jobs (``pending_jobs``: queued or running)."""

    id: str
    owner_id: int
    owner_name: str
    mode: SessionMode
    backend: str
    max_time: int
    created_at: datetime
    activated_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    jobs: int = 0
    pending_jobs: int = 0
    last_job_started: datetime | None = None
    last_job_ended: datetime | None = None

    @property
    def clock(self) -> SessionClock:
        return SessionClock(
            self.activated_at,
            self.expires_at,
            self.closed_at,
            self.cancelled_at,
            self.pending_jobs,
        )

    def usage_seconds(self, now: datetime) -> float:
        """From its first job's start to its last job's end (or now, while jobs are pending)."""
        if self.activated_at is None:
            return 0.0
        end = now if self.pending_jobs else (self.last_job_ended or self.activated_at)
        return max((end - self.activated_at).total_seconds(), 0.0)

    @classmethod
    def from_row(cls, row: Any) -> StoredJobGroup:
        """``row``: the group's columns, ``owner_name`` and the job counts (or none)."""
        return cls(
            id=row.id,
            owner_id=row.owner_id,
            owner_name=row.owner_name,
            mode=SessionMode(row.mode),
            backend=row.backend,
            max_time=row.max_time,
            created_at=row.created_at,
            activated_at=row.activated_at,
            expires_at=row.expires_at,
            closed_at=row.closed_at,
            cancelled_at=row.cancelled_at,
            jobs=getattr(row, "job_count", None) or 0,
            pending_jobs=getattr(row, "pending_jobs", None) or 0,
            last_job_started=getattr(row, "last_job_started", None),
            last_job_ended=getattr(row, "last_job_ended", None),
        )


@dataclass(frozen=True)
class StoredReplica:
    """A registered server process; ``running_jobs`` counts the RUNNING jobs it owns."""

    id: str
    host: str
    pid: int
    url: str
    executor: str
    data_dir: str
    started_at: datetime
    heartbeat_at: datetime
    running_jobs: int = 0

    @classmethod
    def from_row(cls, row: Any, running_jobs: int = 0) -> StoredReplica:
        return cls(
            id=row.id,
            host=row.host,
            pid=row.pid,
            url=row.url,
            executor=row.executor,
            data_dir=row.data_dir,
            started_at=row.started_at,
            heartbeat_at=row.heartbeat_at,
            running_jobs=running_jobs,
        )


@dataclass(frozen=True)
class StoredInterim:
    """One numbered interim result; ``data`` is RuntimeEncoder JSON text."""

    job_id: str
    seq: int
    data: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> StoredInterim:
        return cls(job_id=row.job_id, seq=row.seq, data=row.data, created_at=row.created_at)


@dataclass(frozen=True)
class StoredLogLine:
    stream: str
    text: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> StoredLogLine:
        return cls(stream=row.stream, text=row.text, created_at=row.created_at)


def _tags(text: str | None) -> tuple[str, ...]:
    """Stored tags; anything but a JSON list of strings reads as none (a read never fails)."""
    if not text:
        return ()
    try:
        found = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    return tuple(tag for tag in found if isinstance(tag, str))
