"""Sessions and batches on real databases: which of their queued jobs a claim starts, when
their clock starts, and what becomes of queued jobs of a group that ended."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from storage_support import BACKENDS, fresh_database, make_user

from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.sessions import SessionState
from qruntime.service.claims import claim_jobs
from qruntime.service.fair_share import FairShare
from qruntime.storage import Database, JobRepository, StoredJob, StoredUser
from qruntime.storage.clock import database_now
from qruntime.storage.job_groups import JobGroupRepository
from qruntime.storage.models import JOB_GROUPS
from qruntime.storage.signals import Signals


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


def open_group(database: Database, owner: StoredUser, group_id: str, mode: str) -> str:
    with database.session() as session:
        JobGroupRepository(session).add(
            id=group_id, owner_id=owner.id, mode=mode, backend="aer_simulator", max_time=60
        )
    return group_id


def queue(
    database: Database,
    owner: StoredUser,
    job_id: str,
    group_id: str | None = None,
    resources: str | None = None,
) -> str:
    with database.session() as session:
        JobRepository(session).add(
            id=job_id,
            program_id="hello-world-abc123",
            program_name="hello-world",
            owner_id=owner.id,
            backend="aer_simulator",
            inputs="{}",
            source="def main(backend, user_messenger): pass\n",
            max_execution_time=60.0,
            resources=resources,
            session_id=group_id,
        )
    return job_id


def claim(
    database: Database,
    slots: int,
    *,
    fits: Callable[[str | None], bool] | None = None,
    ended: list[str] | None = None,
) -> list[str]:
    with database.session() as session:
        started: list[StoredJob] = claim_jobs(
            session,
            replica_id="r-1",
            slots=slots,
            lease_seconds=30,
            fair_share=FairShare(),
            signals=Signals("r-1"),
            fits=fits,
            ended=ended,
        )
    return sorted(job.id for job in started)


def finish(database: Database, job_id: str) -> None:
    with database.session() as session:
        assert JobRepository(session).finish(job_id, JobStatus.DONE, result="1") is not None


def stored(database: Database, job_id: str) -> StoredJob:
    with database.session(readonly=True) as session:
        job = JobRepository(session).get(job_id)
    assert job is not None
    return job


def test_a_sessions_jobs_start_one_after_another_holding_back_nothing_else(
    database: Database,
) -> None:
    alice, bob = make_user(database, "alice"), make_user(database, "bob")
    group = open_group(database, alice, "s-1", "session")
    for n in range(3):
        queue(database, alice, f"j-s{n}", group)
    queue(database, alice, "j-alone")  # submitted after the session's jobs
    queue(database, bob, "j-bob")
    assert claim(database, 5) == ["j-alone", "j-bob", "j-s0"]
    assert claim(database, 5) == [], "a session's job overtook the one before it"
    finish(database, "j-s0")
    assert claim(database, 5) == ["j-s1"]
    finish(database, "j-s1")
    assert claim(database, 5) == ["j-s2"]
    with database.session(readonly=True) as session:
        shown = JobGroupRepository(session).require(group)
        now = database_now(session)
    assert (shown.jobs, shown.pending_jobs) == (3, 1)
    assert shown.clock.state(now) is SessionState.ACTIVE


def test_a_batch_starts_its_jobs_together_and_in_submission_order(database: Database) -> None:
    alice = make_user(database, "alice")
    group = open_group(database, alice, "b-1", "batch")
    queue(database, alice, "j-b0", group, resources='{"cpus": 64}')
    queue(database, alice, "j-b1", group)
    queue(database, alice, "j-b2", group)
    queue(database, alice, "j-alone")
    # the executor has no room for the first now: the later ones wait for it too
    assert claim(database, 4, fits=lambda resources: resources is None) == ["j-alone"]
    assert claim(database, 4) == ["j-b0", "j-b1", "j-b2"]


def test_a_groups_clock_starts_with_its_first_job_and_its_queued_jobs_end_with_it(
    database: Database,
) -> None:
    alice = make_user(database, "alice")
    timed = open_group(database, alice, "s-timed", "session")
    cancelled = open_group(database, alice, "s-cancelled", "batch")
    queue(database, alice, "j-t0", timed)
    queue(database, alice, "j-t1", timed)
    queue(database, alice, "j-c0", cancelled)
    with database.session(readonly=True) as session:
        assert JobGroupRepository(session).require(timed).expires_at is None
    with database.session() as session:
        JobGroupRepository(session).cancel(cancelled, database_now(session))
    ended: list[str] = []
    assert claim(database, 4, ended=ended) == ["j-t0"]
    assert ended == ["j-c0"]
    gone = stored(database, "j-c0")
    assert (gone.status, gone.reason) == (JobStatus.CANCELLED, JobReason.CANCELLED_BY_USER)
    with database.session() as session:
        group = JobGroupRepository(session).require(timed)
        assert group.activated_at is not None
        assert group.expires_at == group.activated_at + timedelta(seconds=60)
        past = database_now(session) - timedelta(seconds=1)
        session.execute(update(JOB_GROUPS).where(JOB_GROUPS.c.id == timed).values(expires_at=past))
    finish(database, "j-t0")
    ended.clear()
    assert claim(database, 4, ended=ended) == []
    assert ended == ["j-t1"]
    late = stored(database, "j-t1")
    assert (late.status, late.reason) == (JobStatus.CANCELLED, JobReason.SESSION_ENDED)
    assert "max_time of 60 s" in (late.error_message or "")
    with database.session(readonly=True) as session:
        shown = JobGroupRepository(session).require(timed)
        assert shown.clock.state(database_now(session)) is SessionState.CLOSED
        assert not shown.clock.accepting_jobs(database_now(session))
