"""JobRecorder on a real SQLite file: what it stores, in which order, and whom it tells when."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from storage_support import add_job, fresh_database, make_user, start_job

from qruntime.domain.errors import DuplicateError
from qruntime.domain.events import CancelledEvent, InterimEvent, LogEvent, ResultEvent
from qruntime.domain.job import JobReason, JobStatus
from qruntime.service import job_recorder
from qruntime.service.job_end import JobEnd
from qruntime.service.job_recorder import JobRecorder
from qruntime.service.log_buffer import LOG_FLUSH_SECONDS
from qruntime.storage import Database, JobRepository, StoredInterim


class SeeingNotifier:
    """Records each notification with what a reader would find in the database right then."""

    def __init__(self, db: Database):
        self.db = db
        self.calls: list[tuple[str, str, list[int], str]] = []
        self.ends: list[JobEnd] = []

    def _seen(self, job_id: str) -> tuple[list[int], str]:
        with self.db.session(readonly=True) as session:
            jobs = JobRepository(session)
            job = jobs.get(job_id)
            assert job is not None
            return [i.seq for i in jobs.interims(job_id)], str(job.status)

    def notify(self, job_id: str) -> None:
        self.calls.append(("notify", job_id, *self._seen(job_id)))

    def notify_interims(self, job_id: str, interims: Sequence[StoredInterim]) -> None:
        self.calls.append(("interims", job_id, *self._seen(job_id)))

    def notify_ended(self, job_id: str, end: JobEnd) -> None:
        self.ends.append(end)
        self.calls.append(("notify", job_id, *self._seen(job_id)))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("sqlite", tmp_path) as database:
        yield database


def running_job(database: Database, job_id: str = "j-1") -> str:
    owner = make_user(database)
    with database.session() as session:
        add_job(session, owner, job_id)
        start_job(session, job_id)
    return job_id


def logs(database: Database, job_id: str) -> list[str]:
    with database.session(readonly=True) as session:
        return [line.text for line in JobRepository(session).logs(job_id)]


async def test_each_commit_is_followed_by_a_notification_that_sees_it(database: Database) -> None:
    job_id = running_job(database)
    notifier = SeeingNotifier(database)
    recorder = JobRecorder(database, notifier, max_log_bytes=1024)

    stored = await recorder.record_interims(job_id, [InterimEvent(1, '"a"'), InterimEvent(2, "2")])
    assert [(i.seq, i.data) for i in stored] == [(1, '"a"'), (2, "2")]
    await recorder.record(job_id, [InterimEvent(3, "3")])
    assert await recorder.record_outcome(job_id, ResultEvent('"done"'))

    assert notifier.calls == [
        ("interims", job_id, [1, 2], "RUNNING"),
        ("interims", job_id, [1, 2, 3], "RUNNING"),
        ("notify", job_id, [1, 2, 3], "DONE"),
    ]
    assert notifier.ends == [JobEnd(JobStatus.DONE, None, None, '"done"', 3)]
    with database.session(readonly=True) as session:
        job = JobRepository(session).get(job_id)
    assert job is not None and job.result == '"done"' and job.interim_count == 3


async def test_output_is_buffered_and_stored_before_the_next_result_and_the_outcome(
    database: Database,
) -> None:
    job_id = running_job(database)
    recorder = JobRecorder(database, max_log_bytes=1024)
    recorder.record_log(job_id, LogEvent("first"))
    await recorder.record(job_id, [LogEvent("second", "stderr")])
    assert logs(database, job_id) == []  # waiting in the buffer
    await recorder.record_interims(job_id, [InterimEvent(1, "1")])
    assert logs(database, job_id) == ["first", "second"]

    recorder.record_log(job_id, LogEvent("third"))
    await asyncio.sleep(LOG_FLUSH_SECONDS * 3)  # the scheduled flush, with nothing else
    assert logs(database, job_id) == ["first", "second", "third"]

    recorder.record_log(job_id, LogEvent("last words"))
    stopped = CancelledEvent(JobReason.CANCELLED_BY_USER, "cancelled by request")
    assert await recorder.record_outcome(job_id, stopped)
    assert logs(database, job_id)[-1] == "last words"
    await recorder.close(job_id)


async def test_an_ended_job_keeps_its_outcome_and_a_repeated_seq_is_refused(
    database: Database,
) -> None:
    job_id = running_job(database)
    notifier = SeeingNotifier(database)
    recorder = JobRecorder(database, notifier, max_log_bytes=1024)
    await recorder.record_interims(job_id, [InterimEvent(1, "1")])
    with pytest.raises(DuplicateError):
        await recorder.record_interims(job_id, [InterimEvent(1, "again")])
    assert await recorder.record_outcome(job_id, ResultEvent("1"))
    later = CancelledEvent(JobReason.CANCELLED_BY_USER, "too late")
    assert not await recorder.record_outcome(job_id, later)
    with database.session(readonly=True) as session:
        job = JobRepository(session).get(job_id)
    assert job is not None and job.status is JobStatus.DONE and job.error_message is None


async def test_output_over_the_cap_keeps_the_newest_bytes(database: Database) -> None:
    job_id = running_job(database)
    recorder = JobRecorder(database, max_log_bytes=10)
    for n in range(10):
        recorder.record_log(job_id, LogEvent(f"line{n}"))
    await recorder.close(job_id)
    assert logs(database, job_id) == ["line8", "line9"]


def _no_thread(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the outcome went to a worker thread")


async def test_a_small_outcome_on_a_sqlite_file_is_written_on_the_loop(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = running_job(database)
    notifier = SeeingNotifier(database)
    recorder = JobRecorder(database, notifier, max_log_bytes=1024)
    monkeypatch.setattr(job_recorder.asyncio, "to_thread", _no_thread)
    assert await recorder.record_outcome(job_id, ResultEvent('"done"'))
    assert notifier.calls == [("notify", job_id, [], "DONE")]
    assert notifier.ends == [JobEnd(JobStatus.DONE, None, None, '"done"', 0)]


async def test_a_large_outcome_goes_to_a_thread(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = running_job(database)
    recorder = JobRecorder(database, max_log_bytes=1024)
    monkeypatch.setattr(job_recorder.asyncio, "to_thread", _no_thread)
    large = ResultEvent('"' + "x" * job_recorder.LOOP_OUTCOME_MAX_BYTES + '"')
    with pytest.raises(AssertionError, match="worker thread"):
        await recorder.record_outcome(job_id, large)


async def test_an_outcome_waits_in_a_thread_while_another_writer_holds_the_lock(
    database: Database,
) -> None:
    """The loop never waits for SQLite's write lock: the outcome is written once it is free."""
    job_id = running_job(database)
    recorder = JobRecorder(database, max_log_bytes=1024)
    holder = sqlite3.connect(make_url(database.url).database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        writing = asyncio.create_task(recorder.record_outcome(job_id, ResultEvent("1")))
        started = time.monotonic()
        await asyncio.sleep(0.05)  # the loop runs meanwhile
        assert time.monotonic() - started < 1.0 and not writing.done()
        holder.execute("COMMIT")
        assert await asyncio.wait_for(writing, 10)
    finally:
        holder.close()
    with database.session(readonly=True) as session:
        job = JobRepository(session).get(job_id)
    assert job is not None and job.status is JobStatus.DONE and job.result == "1"
