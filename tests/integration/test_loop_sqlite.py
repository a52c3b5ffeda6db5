"""The event loop's own SQLite connection (storage/loop_sqlite.py): a file database only, and it
never waits for a lock: a write another connection holds the lock for is refused at once, a
read goes on (WAL), and a stream's first read is made there, not in a thread."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from storage_support import add_job, fresh_database, make_user, start_job

from qruntime.domain.errors import NotFoundError
from qruntime.domain.job import JobStatus
from qruntime.domain.users import Role
from qruntime.service.jobs import LOOP_READ_INTERIMS, JobService
from qruntime.service.principal import Principal
from qruntime.storage import Database
from qruntime.storage.hot_path import HotPath
from qruntime.storage.loop_sqlite import LoopSQLite, is_busy


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("sqlite", tmp_path) as database:
        yield database


@contextmanager
def write_lock(database: Database) -> Iterator[None]:
    """Another connection holding SQLite's write lock for the block."""
    holder = sqlite3.connect(make_url(database.url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def running_job(database: Database) -> tuple[Principal, str]:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "j-1")
        start_job(session, "j-1")
    return Principal(alice.id, alice.name, Role.USER), "j-1"


def jobs_of(database: Database) -> JobService:
    scheduler: Any = SimpleNamespace(replica_id="r-1")
    none: Any = None
    return JobService(
        database, none, none, scheduler, max_inputs_bytes=1024, max_queued_jobs_per_user=10
    )


def test_only_a_sqlite_file_has_one() -> None:
    assert LoopSQLite.of(Database("sqlite://")) is None
    assert LoopSQLite.of(Database("postgresql+psycopg://nobody@127.0.0.1:1/none")) is None


def test_one_per_database(database: Database) -> None:
    assert LoopSQLite.of(database) is LoopSQLite.of(database) is not None


def test_a_write_is_refused_at_once_while_another_connection_holds_the_lock(
    database: Database,
) -> None:
    _, job_id = running_job(database)
    on_loop = LoopSQLite.of(database)
    assert on_loop is not None
    started = time.monotonic()
    with write_lock(database), pytest.raises(sqlite3.OperationalError) as refused:
        on_loop.hot.finish(job_id, JobStatus.DONE, result="1")
    assert is_busy(refused.value) and time.monotonic() - started < 0.5
    assert on_loop.reads.job(job_id).status is JobStatus.RUNNING  # type: ignore[union-attr]


def test_a_streams_first_read_is_made_on_the_loop_even_while_a_writer_holds_the_lock(
    database: Database,
) -> None:
    caller, job_id = running_job(database)
    jobs = jobs_of(database)
    with write_lock(database):
        found = jobs.get_with_interims_here(caller, job_id, 0)
    assert found is not None
    job, interims = found
    assert (job.id, job.status, interims) == (job_id, JobStatus.RUNNING, [])


def test_a_streams_first_read_on_the_loop_checks_the_caller_as_in_a_thread(
    database: Database,
) -> None:
    _, job_id = running_job(database)
    bob = make_user(database, "bob")
    with pytest.raises(NotFoundError):
        jobs_of(database).get_with_interims_here(Principal(bob.id, "bob", Role.USER), job_id, 0)


def test_postgresql_reads_in_a_thread(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as database:
        caller, job_id = running_job(database)
        assert jobs_of(database).get_with_interims_here(caller, job_id, 0) is None


def test_a_stream_with_many_interims_to_read_first_reads_them_in_a_thread(
    database: Database,
) -> None:
    caller, job_id = running_job(database)
    many = LOOP_READ_INTERIMS + 1
    HotPath(database).add_interims(job_id, [(seq, "{}") for seq in range(1, many + 1)])
    jobs = jobs_of(database)
    assert jobs.get_with_interims_here(caller, job_id, 0) is None
    found = jobs.get_with_interims_here(caller, job_id, 1)  # one fewer after seq 1
    assert found is not None and [i.seq for i in found[1]] == list(range(2, many + 1))
