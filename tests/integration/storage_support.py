"""Helpers for the storage tests: fresh real databases (SQLite file, PostgreSQL) and factories."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from qruntime.storage import (
    Database,
    JobRepository,
    ProgramRepository,
    StoredJob,
    StoredProgram,
    StoredUser,
    UserRepository,
    sqlite_url,
)
from qruntime.storage.job_claims import JobClaims

#: The server every PostgreSQL test uses; each test gets its own fresh database on it.
POSTGRES_URL = os.environ.get(
    "QRUNTIME_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of ``kind``; PostgreSQL ones are dropped afterwards.

    An unreachable PostgreSQL server makes the test fail, never skip.
    """
    if kind == "sqlite":
        database = Database(sqlite_url(tmp_path / "qruntime.db"))
        try:
            database.migrate()
            yield database
        finally:
            database.dispose()
        return
    name = f"qrt_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        database = Database(url)
        try:
            database.migrate()
            yield database
        finally:
            database.dispose()
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def start_job(session: Session, job_id: str) -> StoredJob | None:
    """Start a queued job as a replica's claim does; None when it was not queued."""
    lease_until = datetime.now(UTC) + timedelta(minutes=10)
    started = JobClaims(session).start([job_id], replica_id="r-test", lease_until=lease_until)
    return started[0] if started else None


def make_user(database: Database, name: str = "alice", role: str = "user") -> StoredUser:
    with database.session() as session:
        return UserRepository(session).create(name, role)


def add_program(
    session: Session, owner: StoredUser, program_id: str, *, public: bool = False, **extra: Any
) -> StoredProgram:
    fields: dict[str, Any] = {
        "name": program_id.rsplit("-", 1)[0],
        "description": "A sample runtime program.",
        "max_execution_time": 300,
        "version": None,
        "spec": {"parameters": {"type": "object"}, "backend_requirements": {"min_num_qubits": 5}},
        "source": "def main(backend, user_messenger, **kwargs):\n    return 1\n",
    }
    fields.update(extra)
    return ProgramRepository(session).add(
        id=program_id, owner_id=owner.id, is_public=public, **fields
    )


def add_job(
    session: Session, owner: StoredUser, job_id: str, *, program_id: str = "hello-world-abc123"
) -> StoredJob:
    return JobRepository(session).add(
        id=job_id,
        program_id=program_id,
        program_name=program_id.rsplit("-", 1)[0],
        owner_id=owner.id,
        backend="aer_simulator",
        inputs='{"iterations": 3}',
        source="def main(backend, user_messenger): pass\n",
        max_execution_time=60.0,
    )


def assert_utc(*values: datetime | None) -> None:
    for value in values:
        assert value is not None
        assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0, value


def run_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` on ``count`` threads released together; re-raises the first error."""
    barrier = threading.Barrier(count)

    def start(i: int) -> object:
        barrier.wait(timeout=10)
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


@contextmanager
def round_trips() -> Iterator[list[str]]:
    """The first word of each statement and commit psycopg sends on a plain (raw) cursor or
    its connection while the block runs."""
    import psycopg

    sent: list[str] = []
    execute, commit = psycopg.RawCursor.execute, psycopg.Connection.commit

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query).split(None, 1)[0].upper())
        return execute(self, query, *args, **kwargs)

    def counted_commit(self: Any) -> None:
        if self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            sent.append("COMMIT")
        commit(self)

    psycopg.RawCursor.execute = counted_execute  # type: ignore[method-assign]
    psycopg.Connection.commit = counted_commit  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        psycopg.RawCursor.execute = execute  # type: ignore[method-assign]
        psycopg.Connection.commit = commit  # type: ignore[method-assign]
