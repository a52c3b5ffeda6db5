"""The claim on the plain DB-API path (``claim_plain``) does what ``claim_jobs`` does, on real
databases: every job once across replicas claiming together, fair share and per-user caps
counted on every replica, rows another transaction is claiming skipped (PostgreSQL), held
jobs left alone, and jobs of sessions or batches handed back to ``claim_jobs``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from storage_support import (
    BACKENDS,
    add_job,
    fresh_database,
    make_user,
    round_trips,
    run_threads,
)

from qruntime.domain.job import JobStatus
from qruntime.service.claims import claim_jobs, claim_plain
from qruntime.service.fair_share import FairShare
from qruntime.storage import Database, JobRepository, StoredJob
from qruntime.storage.job_claims import JobClaims
from qruntime.storage.job_groups import JobGroupRepository
from qruntime.storage.models import utcnow
from qruntime.storage.plain_claims import PlainClaims
from qruntime.storage.signals import Signal, SignalKind, SignalListener, Signals

LEASE = 30.0


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("postgresql", tmp_path) as database:
        yield database


def queue_jobs(database: Database, owner_name: str, count: int) -> list[str]:
    owner = make_user(database, owner_name)
    ids = [f"j-{owner_name}-{n:03d}" for n in range(count)]
    with database.session() as session:
        for job_id in ids:
            add_job(session, owner, job_id)
    return ids


def claim(
    database: Database,
    replica: str,
    slots: int,
    *,
    share: FairShare | None = None,
    cap: int | None = None,
    fits: object = None,
) -> list[StoredJob] | None:
    return PlainClaims(database).transaction(
        lambda claims: claim_plain(
            claims,
            replica_id=replica,
            slots=slots,
            lease_seconds=LEASE,
            fair_share=share or FairShare(),
            signals=Signals(replica),
            max_running_per_user=cap,
            fits=fits,  # type: ignore[arg-type]
        )
    )


def claimed_ids(database: Database, replica: str, slots: int, **options: object) -> list[str]:
    claimed = claim(database, replica, slots, **options)  # type: ignore[arg-type]
    assert claimed is not None
    return [job.id for job in claimed]


def job(database: Database, job_id: str) -> StoredJob:
    with database.session(readonly=True) as session:
        found = JobRepository(session).get(job_id)
    assert found is not None
    return found


def test_a_claimed_job_is_running_here_with_a_lease_and_reads_as_stored(
    database: Database,
) -> None:
    ids = queue_jobs(database, "alice", 3)
    before = utcnow()
    claimed = claim(database, "r-1", 2)
    assert claimed is not None and [j.id for j in claimed] == ids[:2]
    for found in claimed:
        stored = job(database, found.id)
        assert found == stored  # every column, the owner's name included, as the ORM reads it
        assert stored.status is JobStatus.RUNNING and stored.owner_replica == "r-1"
        assert stored.started_at is not None and stored.started_at >= before
        assert stored.lease_expires_at is not None
        lease = (stored.lease_expires_at - before).total_seconds()
        assert LEASE - 5 < lease < LEASE + 5
    assert job(database, ids[2]).status is JobStatus.QUEUED
    assert claimed_ids(database, "r-1", 5) == [ids[2]]
    assert claimed_ids(database, "r-1", 5) == []  # the dispatcher's scan of an empty queue


def test_replicas_claiming_at_once_take_every_job_exactly_once(database: Database) -> None:
    ids = queue_jobs(database, "alice", 40) + queue_jobs(database, "bob", 20)
    engines = [Database(database.url) for _ in range(4)]

    def work(i: int) -> list[str]:
        share, mine = FairShare(), []
        while found := claimed_ids(engines[i], f"r-{i}", 3, share=share):
            mine += found
        return mine

    try:
        claimed: list[list[str]] = run_threads(4, work)  # type: ignore[assignment]
    finally:
        for engine in engines:
            engine.dispose()
    assert sorted(j for mine in claimed for j in mine) == sorted(ids)  # none twice, none lost
    for i, mine in enumerate(claimed):
        assert {job(database, j).owner_replica for j in mine} <= {f"r-{i}"}


def test_a_per_user_cap_holds_across_replicas_claiming_at_once(database: Database) -> None:
    queue_jobs(database, "alice", 12)
    bob = queue_jobs(database, "bob", 2)
    engines = [Database(database.url) for _ in range(4)]

    def work(i: int) -> list[str]:
        share, mine = FairShare(), []
        while found := claimed_ids(engines[i], f"r-{i}", 3, share=share, cap=3):
            mine += found
        return mine

    try:
        claimed: list[list[str]] = run_threads(4, work)  # type: ignore[assignment]
    finally:
        for engine in engines:
            engine.dispose()
    owners = Counter(job(database, j).owner_name for mine in claimed for j in mine)
    assert owners == {"alice": 3, "bob": 2}
    assert {job(database, j).status for j in bob} == {JobStatus.RUNNING}


def test_fair_share_counts_the_jobs_running_on_other_replicas(database: Database) -> None:
    alice = queue_jobs(database, "alice", 4)
    bob = queue_jobs(database, "bob", 2)
    with database.session() as session:  # one replica claims the ORM's way, the next plainly
        first = claim_jobs(
            session,
            replica_id="r-one",
            slots=2,
            lease_seconds=LEASE,
            fair_share=FairShare(),
            signals=Signals("r-one"),
        )
    assert [j.id for j in first] == [alice[0], bob[0]]
    assert sorted(claimed_ids(database, "r-two", 2)) == sorted([alice[1], bob[1]])


def test_jobs_the_executor_has_no_room_for_stay_queued(database: Database) -> None:
    ids = queue_jobs(database, "alice", 3)
    offered: list[str | None] = []

    def fits(resources: str | None) -> bool:
        offered.append(resources)
        return len(offered) == 1

    assert claimed_ids(database, "r-1", 3, fits=fits) == [ids[0]]
    assert len(offered) == 3
    assert {job(database, j).status for j in ids[1:]} == {JobStatus.QUEUED}


def test_a_claim_skips_a_job_that_another_transaction_holds(postgres: Database) -> None:
    ids = queue_jobs(postgres, "alice", 3)
    with postgres.session() as holder:
        assert [j.id for j in JobClaims(holder).lock_queued([ids[0]])] == [ids[0]]
        other = Database(postgres.url)
        try:
            claimed = claimed_ids(other, "r-other", 3)  # does not wait for the holder
        finally:
            other.dispose()
    assert claimed == ids[1:]
    assert job(postgres, ids[0]).status is JobStatus.QUEUED


def test_jobs_held_by_a_live_replica_are_left_alone_and_count_against_the_cap(
    database: Database,
) -> None:
    ids = queue_jobs(database, "alice", 3)
    with database.session() as session:
        held = claim_jobs(
            session,
            replica_id="r-ray",
            slots=2,
            lease_seconds=LEASE,
            fair_share=FairShare(),
            signals=Signals("r-ray"),
            hold=True,
        )
    assert [j.id for j in held] == ids[:2]
    assert claimed_ids(database, "r-other", 3, cap=2) == []
    assert claimed_ids(database, "r-other", 3) == [ids[2]]
    assert {job(database, j).owner_replica for j in ids[:2]} == {"r-ray"}


def test_a_queue_with_a_sessions_job_at_its_head_goes_to_claim_jobs(database: Database) -> None:
    owner = make_user(database, "alice")
    with database.session() as session:
        JobGroupRepository(session).add(
            id="s-1", owner_id=owner.id, mode="session", backend="aer_simulator", max_time=60
        )
        add_job(session, owner, "j-alone")
        JobRepository(session).add(
            id="j-in-session",
            program_id="hello-world-abc123",
            program_name="hello-world",
            owner_id=owner.id,
            backend="aer_simulator",
            inputs="{}",
            source="def main(backend, user_messenger): pass\n",
            max_execution_time=60.0,
            session_id="s-1",
        )
    assert claim(database, "r-1", 2) is None
    assert {job(database, j).status for j in ("j-alone", "j-in-session")} == {JobStatus.QUEUED}
    assert claimed_ids(database, "r-1", 1) == ["j-alone"]  # one slot: only the older head


async def test_each_claimed_job_signals_that_it_runs(postgres: Database) -> None:
    ids = queue_jobs(postgres, "alice", 2)
    listener = SignalListener(postgres.url)
    await listener.connect()
    received: list[Signal] = []

    async def collect() -> None:
        async for signal in listener.signals():
            received.append(signal)

    task = asyncio.create_task(collect())
    try:
        assert await asyncio.to_thread(claimed_ids, postgres, "r-1", 2) == ids
        for _ in range(200):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert received == [Signal(SignalKind.CHANGED, j, "r-1", "RUNNING") for j in ids]
    finally:
        task.cancel()
        await listener.aclose()


def test_a_claim_on_postgresql_starts_reads_and_signals_its_jobs_in_one_statement(
    postgres: Database,
) -> None:
    ids = queue_jobs(postgres, "alice", 2)
    with round_trips() as sent:
        assert claimed_ids(postgres, "r-1", 2) == ids
    # BEGIN, the queue's heads, the owners' running jobs, the picks locked, then one WITH
    assert sent == ["BEGIN", "SELECT", "SELECT", "SELECT", "WITH", "COMMIT"]
    assert {job(postgres, j).owner_replica for j in ids} == {"r-1"}


def test_a_lease_that_ran_out_frees_a_held_job_for_the_plain_claim(database: Database) -> None:
    ids = queue_jobs(database, "alice", 1)
    with database.session() as session:
        until = utcnow() - timedelta(seconds=1)
        assert JobClaims(session).hold(ids, replica_id="r-gone", lease_until=until, now=utcnow())
    assert claimed_ids(database, "r-1", 1) == ids
    assert job(database, ids[0]).owner_replica == "r-1"
