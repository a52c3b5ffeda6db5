"""The schema as SQLAlchemy declarative models; migrations/ must produce exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Stable constraint names, so migrations can refer to them on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns aware UTC datetimes (SQLite would drop the tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage takes timezone-aware values only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: SQLite only auto-increments an ``INTEGER PRIMARY KEY``; elsewhere log ids may grow large.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ProgramRow(Base):
    __tablename__ = "programs"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    max_execution_time: Mapped[int] = mapped_column(Integer)
    version: Mapped[str | None] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    is_public: Mapped[bool] = mapped_column(Boolean, index=True)
    source: Mapped[str] = mapped_column(Text)
    #: What ``main`` takes (``MainSignature.to_json``), read from the source at upload;
    #: NULL for programs stored before it was recorded (read from the source then).
    main_signature: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class JobRow(Base):
    """A job; ``program_id`` is deliberately no foreign key: jobs outlive deleted programs."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_owner_id_created_at", "owner_id", "created_at"),
        #: Claims read each user's oldest queued jobs and count running jobs per user.
        Index("ix_jobs_status_owner_id_created_at", "status", "owner_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    program_id: Mapped[str] = mapped_column(String(80), index=True)
    program_name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    backend: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    max_execution_time: Mapped[float] = mapped_column(Float)
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    interim_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    log_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    log_truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: JobResources as JSON text (CPUs, memory, GPUs to reserve); None: the defaults.
    resources: Mapped[str | None] = mapped_column(Text)
    #: Tags (qiskit-ibm-runtime's job_tags) as a JSON list of strings; None: no tags.
    tags: Mapped[str | None] = mapped_column(Text)
    #: Characters stored for the job but its log: inputs, source, result, error, interim results.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The replica that runs the job (RUNNING), or ran it last; None before it started.
    owner_replica: Mapped[str | None] = mapped_column(String(64))
    #: Until when (database clock) the owner's claim holds; its heartbeat renews it.
    lease_expires_at: Mapped[datetime | None]
    #: Set by a cancel that reached another replica than the owner; the owner stops the job.
    cancel_requested_at: Mapped[datetime | None]
    #: The Ray node whose agent started the job (set once, by that agent); None: not started
    #: by an agent (or the local executor).
    started_on: Mapped[str | None] = mapped_column(String(64))
    #: The session or batch (``job_groups.id``) the job was submitted in; None: on its own.
    session_id: Mapped[str | None] = mapped_column(String(40), index=True)


class JobGroupRow(Base):
    """A session or batch (domain/sessions.py); its state is computed from these moments and
    its jobs. Never deleted: its jobs name it."""

    __tablename__ = "job_groups"
    __table_args__ = (Index("ix_job_groups_owner_id_created_at", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: ``session`` or ``batch``.
    mode: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(100))
    #: Seconds it may run, counted from the start of its first job.
    max_time: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    #: When its first job started; ``expires_at`` is that plus ``max_time``.
    activated_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    #: Closed by its owner: no new jobs, queued ones still run.
    closed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class InterimRow(Base):
    __tablename__ = "interim_results"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class LogLineRow(Base):
    __tablename__ = "log_lines"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    stream: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ReplicaRow(Base):
    """A running ``qruntime serve`` process; its row goes when it stops or is found dead."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(255))
    executor: Mapped[str] = mapped_column(String(32))
    #: The data directory it runs from, so a restart on it knows its previous incarnation.
    data_dir: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class ServerSecretRow(Base):
    """A random key made once per database, so that every replica signs the same way."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class StreamDeliveryRow(Base):
    """How far a compatibility websocket got with a job's interim results, per token, so
    that a client which reconnects (to any replica) resumes after them; rows expire soon."""

    __tablename__ = "stream_deliveries"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# Core tables for the repositories: they select rows, not entities, so no identity map can
# serve a stale object after a conditional UPDATE in the same session.
USERS = cast(Table, UserRow.__table__)
TOKENS = cast(Table, TokenRow.__table__)
PROGRAMS = cast(Table, ProgramRow.__table__)
JOBS = cast(Table, JobRow.__table__)
INTERIMS = cast(Table, InterimRow.__table__)
LOG_LINES = cast(Table, LogLineRow.__table__)
REPLICAS = cast(Table, ReplicaRow.__table__)
SERVER_SECRETS = cast(Table, ServerSecretRow.__table__)
STREAM_DELIVERIES = cast(Table, StreamDeliveryRow.__table__)
JOB_GROUPS = cast(Table, JobGroupRow.__table__)
