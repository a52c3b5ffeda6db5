"""The plain DB-API path on PostgreSQL skips the pool's ping: a pooled connection that died
(a database restart, an idle timeout) is found by the first round trip and the work runs
again on a live one; the ORM's checkouts still ping; connections go back as they came."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from storage_support import add_job, fresh_database, make_user

from qruntime.storage import Database, JobRepository
from qruntime.storage.hot_path import HotPath
from qruntime.storage.hot_reads import HotReads
from qruntime.storage.models import JOBS


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("postgresql", tmp_path) as database:
        yield database


def kill_pooled_connections(database: Database) -> int:
    """Terminate every other backend of this database, as a restart would; how many."""
    url = make_url(database.url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def fill_pool(database: Database, count: int) -> None:
    """``count`` connections checked out at once, then all back in the pool."""
    held = [database.raw_connection() for _ in range(count)]
    for connection in held:
        connection.close()


def test_reads_and_writes_survive_dead_pooled_connections(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
    fill_pool(database, 3)
    assert kill_pooled_connections(database) >= 3
    reads, hot = HotReads.of(database), HotPath(database)
    assert reads.job("job-1").id == "job-1"  # a dead checkout, then a pinged one
    kill_pooled_connections(database)
    hot.add_interims("job-1", [(1, "[1]")])  # its BEGIN finds the connection dead
    kill_pooled_connections(database)
    job, interims = reads.job_and_interims("job-1")
    assert job.interim_count == 1
    assert [(i.seq, i.data) for i in interims] == [(1, "[1]")]
    kill_pooled_connections(database)
    with database.session(readonly=True) as session:  # the ORM's checkout pings as before
        assert JobRepository(session).get("job-1").interim_count == 1


def test_connections_go_back_to_the_pool_out_of_autocommit(database: Database) -> None:
    alice = make_user(database)
    reads = HotReads.of(database)
    for _ in range(3):
        assert reads.job("missing") is None  # the plain read runs in autocommit
    connection = database.raw_connection()
    try:
        assert connection.dbapi_connection.autocommit is False
    finally:
        connection.close()
    with pytest.raises(RuntimeError), database.session() as session:  # so this rolls back
        add_job(session, alice, "job-1")
        session.flush()
        raise RuntimeError("rolled back")
    with database.session(readonly=True) as session:
        assert session.execute(select(JOBS.c.id)).all() == []
