"""Wire types of the REST API (see docs/api.md); built from storage records at the edge."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qruntime.domain.instances import instance_crn
from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.text import decode_stored_json, text_problem
from qruntime.storage import (
    StoredInterim,
    StoredJob,
    StoredProgram,
    StoredReplica,
    StoredToken,
    StoredUser,
)

#: The largest integer the databases store (a signed 64-bit BIGINT). Offsets and sequence numbers
#: past it would overflow the query, so the API refuses them up front (422).
SQL_INT_MAX = 2**63 - 1


def iso(moment: datetime | None) -> str | None:
    """UTC with a ``Z``, to the second, as the seeds print dates."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Request(BaseModel):
    """A request body; its plain-text fields must be valid text without NUL (domain/text.py).

    JSON values (inputs, metadata) are checked by the services, where NUL is allowed.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        if isinstance(value, str) and (problem := text_problem(value)) is not None:
            raise ValueError(f"text {problem}")
        return value


class ProgramCreate(_Request):
    data: str = Field(description="The program's Python source, base64-encoded.")
    metadata: Any = Field(description="The program's metadata in the seed's JSON format.")
    bare_name: bool = Field(False, description="Admins only: use the program name as the id.")


class ProgramUpdate(_Request):
    name: str | None = None
    description: str | None = None
    max_execution_time: int | None = None
    spec: dict[str, Any] | None = None
    version: str | None = None


class ProgramData(_Request):
    data: str = Field(description="The new Python source, base64-encoded.")


class ProgramPublic(BaseModel):
    id: str
    name: str
    description: str
    max_execution_time: int
    version: str | None
    is_public: bool
    owner: str
    spec: dict[str, Any]
    creation_date: str
    update_date: str
    data: str | None = None

    @classmethod
    def of(cls, program: StoredProgram, *, with_source: bool = False) -> ProgramPublic:
        return cls(
            id=program.id,
            name=program.name,
            description=program.description,
            max_execution_time=program.max_execution_time,
            version=program.version,
            is_public=program.is_public,
            owner=program.owner_name,
            spec=program.spec,
            creation_date=iso(program.created_at) or "",
            update_date=iso(program.updated_at) or "",
            data=base64.b64encode(program.source.encode()).decode() if with_source else None,
        )


class ProgramsPublic(BaseModel):
    programs: list[ProgramPublic]
    total: int


class JobCreate(_Request):
    program_id: str
    backend: str = "aer_simulator"
    inputs: Any = Field(default_factory=dict, description="RuntimeEncoder JSON object.")
    max_execution_time: float | None = None
    resources: dict[str, Any] | None = Field(
        default=None,
        description="What the job reserves: `cpus`, `memory_bytes`, `gpus` (the program's "
        "`spec.resources`, else one CPU); the Ray executor places the job by it.",
    )
    session_id: str | None = Field(
        default=None, max_length=100, description="A session or batch of yours to join."
    )


class JobPublic(BaseModel):
    id: str
    program_id: str
    program_name: str
    owner: str
    backend: str
    status: JobStatus
    reason: JobReason | None
    error_message: str | None
    inputs: Any
    max_execution_time: float
    creation_date: str
    start_date: str | None
    end_date: str | None
    interim_count: int
    resources: dict[str, Any] | None = None
    waiting_reason: str | None = Field(
        default=None, description="Why a QUEUED job does not start now, when one is known."
    )
    session_id: str | None = Field(default=None, description="Its session or batch, if any.")

    @classmethod
    def of(cls, job: StoredJob, waiting_reason: str | None = None) -> JobPublic:
        return cls(
            id=job.id,
            program_id=job.program_id,
            program_name=job.program_name,
            owner=job.owner_name,
            backend=job.backend,
            status=job.status,
            reason=job.reason,
            error_message=job.error_message,
            inputs=decode_stored_json(job.inputs),
            max_execution_time=job.max_execution_time,
            creation_date=iso(job.created_at) or "",
            start_date=iso(job.started_at),
            end_date=iso(job.ended_at),
            interim_count=job.interim_count,
            resources=decode_stored_json(job.resources) if job.resources else None,
            waiting_reason=waiting_reason,
            session_id=job.session_id,
        )


class JobsPublic(BaseModel):
    jobs: list[JobPublic]
    total: int


class InterimPublic(BaseModel):
    seq: int
    data: Any
    creation_date: str

    @classmethod
    def of(cls, interim: StoredInterim) -> InterimPublic:
        return cls(
            seq=interim.seq,
            data=decode_stored_json(interim.data),
            creation_date=iso(interim.created_at) or "",
        )


class InterimsPublic(BaseModel):
    interim_results: list[InterimPublic]


class UserPublic(BaseModel):
    name: str
    role: str
    creation_date: str
    instance: str = Field(
        description="The user's instance CRN (qiskit-ibm-runtime's `instance`, docs/compat.md)."
    )

    @classmethod
    def of(cls, user: StoredUser) -> UserPublic:
        return cls(
            name=user.name,
            role=user.role,
            creation_date=iso(user.created_at) or "",
            instance=instance_crn(user.id),
        )


class UsersPublic(BaseModel):
    users: list[UserPublic]


class UserCreate(_Request):
    name: str
    role: str = "user"


class TokenIssued(BaseModel):
    token: str = Field(description="Shown once; only its hash is stored.")
    token_id: str


class UserCreated(TokenIssued):
    user: UserPublic


class TokenPublic(BaseModel):
    id: str
    creation_date: str
    revoked_date: str | None

    @classmethod
    def of(cls, token: StoredToken) -> TokenPublic:
        return cls(
            id=token.id,
            creation_date=iso(token.created_at) or "",
            revoked_date=iso(token.revoked_at),
        )


class TokensPublic(BaseModel):
    tokens: list[TokenPublic]


class TokenRevoke(_Request):
    token_id: str | None = None
    token: str | None = None


class BackendsPublic(BaseModel):
    backends: list[dict[str, Any]]


class PackagePublic(BaseModel):
    name: str
    version: str


class EnvironmentPublic(BaseModel):
    """What jobs can import: the server's Python and its installed distributions."""

    python: str
    packages: list[PackagePublic]


class SandboxProtection(BaseModel):
    name: str
    active: bool
    detail: str


class SandboxStatus(BaseModel):
    """Which protections confine jobs on this server; an inactive one says why."""

    enabled: bool
    protections: list[SandboxProtection]


class ProblemPublic(BaseModel):
    location: str = Field(description="Where the problem is, e.g. `inputs.iterations`.")
    message: str


class ErrorPublic(BaseModel):
    code: str = Field(description="A stable, machine-readable code; see the error table.")
    message: str = Field(description="What went wrong, for people.")
    problems: list[ProblemPublic] = Field(description="Every violation found; may be empty.")


class ErrorBody(BaseModel):
    """The one body shape of every refusal (docs/api.md, "Errors")."""

    error: ErrorPublic


class StreamsStatus(BaseModel):
    """Event streams open now and their caps (QRUNTIME_MAX_STREAMS, ..._PER_USER)."""

    open: int
    most_open_by_one_user: int
    max: int
    max_per_user: int


class ReplicaPublic(BaseModel):
    """One ``qruntime serve`` process on this database (docs/deployment.md)."""

    id: str
    host: str
    pid: int
    url: str
    executor: str
    start_date: str
    heartbeat_date: str
    running_jobs: int = Field(description="RUNNING jobs this replica owns.")

    @classmethod
    def of(cls, replica: StoredReplica) -> ReplicaPublic:
        return cls(
            id=replica.id,
            host=replica.host,
            pid=replica.pid,
            url=replica.url,
            executor=replica.executor,
            start_date=iso(replica.started_at) or "",
            heartbeat_date=iso(replica.heartbeat_at) or "",
            running_jobs=replica.running_jobs,
        )


class HealthPublic(BaseModel):
    """What anyone may know: whether this replica serves (for a load balancer), its version."""

    status: str = Field(description="`ok` (a replica that cannot serve answers 503).")
    version: str


class Health(BaseModel):
    """The whole health report, for an admin's token."""

    status: str
    version: str
    database: str
    sandbox: SandboxStatus
    executor: dict[str, Any] = Field(
        default_factory=dict,
        description="Where jobs run: `kind`, `state` (`up`/`down`), a `reason` when down, and "
        "for Ray its nodes with their total and free resources.",
    )
    streams: StreamsStatus
    replica: str = Field(description="The id of the replica that answered.")
    replicas: list[ReplicaPublic] = Field(description="Every registered replica, oldest first.")
