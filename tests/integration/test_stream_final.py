"""A job's stream sends the final event from the outcome this replica just stored, without
reading the job back, and reads it wherever the hub cannot vouch for every interim result
(stored by another process, a gap, or nobody waiting); SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from storage_support import BACKENDS, add_job, fresh_database, make_user, start_job

from qruntime.domain.events import InterimEvent, ResultEvent
from qruntime.domain.job import JobStatus
from qruntime.service import job_stream
from qruntime.service.job_recorder import JobRecorder
from qruntime.service.job_stream import StreamFinal, StreamItem, StreamStatus, follow_job
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, StoredInterim


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        owner = make_user(database)
        with database.session() as session:
            add_job(session, owner, "j-1")
            start_job(session, "j-1")
        yield database


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``since`` of every read of the job the stream makes."""
    made: list[int] = []
    read = job_stream._read

    def counted(db: Database, job_id: str, since: int) -> object:
        made.append(since)
        return read(db, job_id, since)

    monkeypatch.setattr(job_stream, "_read", counted)
    return made


async def _next(stream: AsyncIterator[list[StreamItem]]) -> asyncio.Task[list[StreamItem]]:
    """The stream's next batch, once the stream waits on the hub for it."""
    task = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)  # its read in a thread, then the wait
    return task


def _shape(items: list[StreamItem]) -> list[object]:
    return [i.seq if isinstance(i, StoredInterim) else type(i).__name__ for i in items]


async def test_the_final_event_comes_from_the_stored_outcome_without_a_read(
    database: Database, reads: list[int]
) -> None:
    hub = StreamHub()
    recorder = JobRecorder(database, hub, max_log_bytes=1024)
    stream = follow_job(database, hub, "j-1")
    assert await anext(stream) == [StreamStatus(JobStatus.RUNNING, None)]
    following = await _next(stream)
    await recorder.record_interims("j-1", [InterimEvent(1, "1"), InterimEvent(2, "2")])
    assert _shape(await following) == [1, 2]  # from the hub's memory
    following = await _next(stream)
    await recorder.record_outcome("j-1", ResultEvent('"done"'))
    assert await following == [StreamFinal(JobStatus.DONE, None, None, '"done"')]
    assert await anext(stream, None) is None
    assert reads == [0]  # the first read only


async def test_a_resumed_stream_that_was_sent_everything_gets_the_final_event_alone(
    database: Database, reads: list[int]
) -> None:
    hub = StreamHub()
    recorder = JobRecorder(database, hub, max_log_bytes=1024)
    await recorder.record_interims("j-1", [InterimEvent(1, "1"), InterimEvent(2, "2")])
    stream = follow_job(database, hub, "j-1", since=5)  # Last-Event-ID past every one
    assert await anext(stream) == [StreamStatus(JobStatus.RUNNING, None)]
    following = await _next(stream)
    await recorder.record_outcome("j-1", ResultEvent('"done"'))
    assert _shape(await following) == ["StreamFinal"] and reads == [5]


async def test_interims_the_hub_did_not_keep_are_read_before_the_final_event(
    database: Database, reads: list[int]
) -> None:
    hub = StreamHub()
    elsewhere = JobRecorder(database, max_log_bytes=1024)  # another process: no wake-up here
    recorder = JobRecorder(database, hub, max_log_bytes=1024)
    stream = follow_job(database, hub, "j-1")
    await anext(stream)
    following = await _next(stream)
    await elsewhere.record_interims("j-1", [InterimEvent(1, "1"), InterimEvent(2, "2")])
    await recorder.record_outcome("j-1", ResultEvent('"done"'))
    assert _shape(await following) == [1, 2, "StreamFinal"] and reads == [0, 0]


async def test_a_gap_in_the_hub_s_window_is_read(database: Database, reads: list[int]) -> None:
    hub = StreamHub()
    elsewhere = JobRecorder(database, max_log_bytes=1024)
    recorder = JobRecorder(database, hub, max_log_bytes=1024)
    stream = follow_job(database, hub, "j-1", since=1)  # resumed after interim 1
    await anext(stream)
    await elsewhere.record_interims("j-1", [InterimEvent(1, "1"), InterimEvent(2, "2")])
    following = await _next(stream)
    await recorder.record_interims("j-1", [InterimEvent(3, "3")])  # 2 is not in the window
    assert _shape(await following) == [2, 3] and reads == [1, 1]
    following = await _next(stream)
    await recorder.record_outcome("j-1", ResultEvent('"done"'))
    assert _shape(await following) == ["StreamFinal"] and reads == [1, 1]
