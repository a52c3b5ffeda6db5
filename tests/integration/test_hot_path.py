"""The plain DB-API writes of a running job: the same rows, counts, refusals and signals as
the ORM repository's, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from storage_support import (
    BACKENDS,
    add_job,
    assert_utc,
    fresh_database,
    make_user,
    round_trips,
    start_job,
)

from qruntime.domain.errors import DuplicateError, NotFoundError
from qruntime.domain.job import JobReason, JobStatus
from qruntime.storage import Database, JobRepository
from qruntime.storage.hot_path import INTERIMS_PER_INSERT, HotPath
from qruntime.storage.models import JOBS
from qruntime.storage.signals import CHANNEL, Signal, SignalKind


def stored_bytes(database: Database, job_id: str) -> int:
    with database.session(readonly=True) as session:
        query = select(JOBS.c.stored_bytes).where(JOBS.c.id == job_id)
        return session.execute(query).scalar_one()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


def test_interim_batches_are_stored_counted_and_refused_as_by_the_repository(
    database: Database,
) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
    before = stored_bytes(database, "job-1")
    hot = HotPath(database)
    stored = hot.add_interims("job-1", [(1, '{"a": 1}'), (2, '{"a": 22}')])
    assert [(i.seq, i.data) for i in stored] == [(1, '{"a": 1}'), (2, '{"a": 22}')]
    with pytest.raises(DuplicateError, match="interim results 2, 3"):
        hot.add_interims("job-1", [(2, "{}"), (3, "{}")])  # 3 is not stored either
    with pytest.raises(NotFoundError):
        hot.add_interims("missing", [(1, "{}")])
    hot.add_interims("job-1", [(3, "[3]")])
    assert hot.add_interims("job-1", []) == []
    with database.session(readonly=True) as session:
        jobs = JobRepository(session)
        job, read = jobs.get("job-1"), jobs.interims("job-1")
    assert [(i.seq, i.data) for i in read] == [(1, '{"a": 1}'), (2, '{"a": 22}'), (3, "[3]")]
    assert read[0].created_at == stored[0].created_at  # the stored form reads back exactly
    assert_utc(*(i.created_at for i in read))
    assert job.interim_count == 3
    assert stored_bytes(database, "job-1") == before + len('{"a": 1}{"a": 22}[3]')


def test_a_batch_longer_than_one_insert_is_stored_whole_or_not_at_all(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
    hot = HotPath(database)
    size = 2 * INTERIMS_PER_INSERT + 7  # three INSERTs
    items = [(seq, f'{{"n": {seq}}}') for seq in range(1, size + 1)]
    assert [(i.seq, i.data) for i in hot.add_interims("job-1", items)] == items
    # The last INSERT of the next batch meets a stored seq: its first two are rolled back too.
    clash = [(seq, "{}") for seq in range(size + 1, size + 2 * INTERIMS_PER_INSERT + 1)]
    with pytest.raises(DuplicateError):
        hot.add_interims("job-1", [*clash, (size, "{}")])
    with database.session(readonly=True) as session:
        jobs = JobRepository(session)
        job, read = jobs.get("job-1"), jobs.interims("job-1")
    assert [(i.seq, i.data) for i in read] == items
    assert job is not None and job.interim_count == size


def test_an_outcome_is_stored_once_and_never_changed(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
        start_job(session, "job-1")
    before = stored_bytes(database, "job-1")
    hot = HotPath(database)
    with pytest.raises(ValueError):
        hot.finish("job-1", JobStatus.RUNNING)
    failed = JobReason.PROGRAM_FAILED
    stored = hot.finish("job-1", JobStatus.ERROR, reason=failed, error_message="x")
    assert stored == 0  # stored (not None), and the job has no interim results
    assert hot.finish("job-1", JobStatus.DONE, result='"late"') is None
    assert hot.finish("missing", JobStatus.DONE) is None
    with database.session(readonly=True) as session:
        job = JobRepository(session).get("job-1")
    assert (job.status, job.reason, job.error_message, job.result) == (
        JobStatus.ERROR,
        JobReason.PROGRAM_FAILED,
        "x",
        None,
    )
    assert stored_bytes(database, "job-1") == before + 1
    assert_utc(job.ended_at)
    assert job.ended_at >= job.started_at


def test_signals_go_with_the_commit_and_only_for_a_change() -> None:
    """PostgreSQL: a listener hears an interim batch's and an outcome's signal, but none for
    an outcome that was refused."""
    with fresh_database("postgresql", Path()) as database:
        alice = make_user(database)
        with database.session() as session:
            add_job(session, alice, "job-1")
        url = make_url(database.url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            hot = HotPath(database)
            batch = Signal(SignalKind.INTERIMS, "job-1", "me", "1")
            ended = Signal(SignalKind.CHANGED, "job-1", "me", "DONE")
            hot.add_interims("job-1", [(1, "{}")], batch)
            assert hot.finish("job-1", JobStatus.DONE, result="1", signal=ended) is not None
            assert hot.finish("job-1", JobStatus.DONE, result="2", signal=ended) is None
            heard = [n.payload for n in conn.notifies(timeout=2, stop_after=3)]
    assert heard == [batch.payload(), ended.payload()]


def test_an_outcome_on_postgresql_is_one_round_trip() -> None:
    """The outcome, its count and its signal in one statement on its own: no BEGIN, no
    COMMIT (autocommit); it is stored and heard all the same."""
    with fresh_database("postgresql", Path()) as database:
        alice = make_user(database)
        with database.session() as session:
            add_job(session, alice, "job-1")
        hot = HotPath(database)
        ended = Signal(SignalKind.CHANGED, "job-1", "me", "DONE")
        with round_trips() as sent:
            assert hot.finish("job-1", JobStatus.DONE, result="1", signal=ended) == 0
        assert sent == ["WITH"]
        with database.session(readonly=True) as session:
            job = JobRepository(session).get("job-1")
        assert job is not None and job.status is JobStatus.DONE and job.result == "1"
