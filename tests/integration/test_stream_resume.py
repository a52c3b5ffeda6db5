"""Where a 2021-client websocket stream got to lives in the database (service/stream_resume.py):
a reconnect that reaches another replica, or the server restarted, resumes there. Two
``Database`` objects on one database stand for two replicas; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from storage_support import BACKENDS, add_job, add_program, fresh_database, make_user

from qruntime.service import stream_resume
from qruntime.service.stream_resume import StreamResume
from qruntime.storage import Database, JobRepository


@pytest.fixture(params=BACKENDS)
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    with fresh_database(request.param, tmp_path) as first:
        second = Database(first.url)
        try:
            alice = make_user(first)
            with first.session() as session:
                add_program(session, alice, "hello-world-abc123")
                add_job(session, alice, "job-1")
            yield first, second
        finally:
            second.dispose()


def test_a_reconnect_to_another_replica_resumes_after_what_was_sent(
    replicas: tuple[Database, Database],
) -> None:
    first, second = replicas

    async def scenario() -> tuple[int, int, int, int]:
        here = StreamResume(first, "token-a", "job-1")
        fresh = await here.resume_point()
        await here.delivered(3)
        await StreamResume(first, "token-a", "job-1").delivered(2)  # an overlapping old one
        there = await StreamResume(second, "token-a", "job-1").resume_point()
        other_token = await StreamResume(second, "token-b", "job-1").resume_point()
        await StreamResume(second, "token-a", "job-1").delivered(5)
        return fresh, there, other_token, await here.resume_point()

    assert asyncio.run(scenario()) == (0, 3, 0, 5)


def test_the_point_expires_and_goes_with_its_job(
    replicas: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = replicas
    resume = StreamResume(first, "token-a", "job-1")

    async def expired() -> int:
        monkeypatch.setattr(stream_resume, "TTL", timedelta(seconds=-1))
        await resume.delivered(4)
        return await StreamResume(second, "token-a", "job-1").resume_point()

    assert asyncio.run(expired()) == 0
    monkeypatch.setattr(stream_resume, "TTL", timedelta(minutes=2))
    asyncio.run(resume.delivered(4))
    with first.session() as session:
        assert JobRepository(session).delete("job-1")
    # the row went with the job (ON DELETE CASCADE); a deleted job's stream records nothing
    asyncio.run(resume.delivered(6))
    assert asyncio.run(resume.resume_point()) == 0
