"""Claims, leases, takeovers, the replica registry and signals on real databases.

The concurrency tests open one ``Database`` (its own connection pool) per thread, as separate
replicas would, and release the threads together; on SQLite the same code runs serialised
by its single writer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from storage_support import BACKENDS, add_job, fresh_database, make_user, run_threads

from qruntime.domain.job import JobReason, JobStatus
from qruntime.service.claims import claim_jobs
from qruntime.service.fair_share import FairShare
from qruntime.service.replicas import ReplicaIdentity, ReplicaRegistry
from qruntime.storage import Database, JobRepository, StoredJob
from qruntime.storage.clock import database_now
from qruntime.storage.job_claims import JobClaims
from qruntime.storage.models import JOBS, utcnow
from qruntime.storage.replicas import ReplicaRepository
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


def queue_jobs(database: Database, owner_name: str, count: int, prefix: str = "") -> list[str]:
    owner = make_user(database, owner_name)
    ids = [f"j-{prefix or owner_name}-{n:03d}" for n in range(count)]
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
    hold: bool = False,
) -> list[StoredJob]:
    with database.session() as session:
        return claim_jobs(
            session,
            replica_id=replica,
            slots=slots,
            lease_seconds=LEASE,
            fair_share=share or FairShare(),
            signals=Signals(replica),
            max_running_per_user=cap,
            hold=hold,
        )


def job(database: Database, job_id: str) -> StoredJob:
    with database.session(readonly=True) as session:
        found = JobRepository(session).get(job_id)
    assert found is not None
    return found


def replicas_claiming_together(
    database: Database, replicas: int, slots: int, cap: int | None = None
) -> list[list[str]]:
    """Each replica (its own engine) claims ``slots`` at a time until a claim finds nothing."""
    engines = [Database(database.url) for _ in range(replicas)]

    def work(i: int) -> list[str]:
        share, mine = FairShare(), []
        while claimed := claim(engines[i], f"r-{i}", slots, share=share, cap=cap):
            mine += [j.id for j in claimed]
        return mine

    try:
        return run_threads(replicas, work)  # type: ignore[return-value]
    finally:
        for engine in engines:
            engine.dispose()


# --- claiming ------------------------------------------------------------------------------------


def test_replicas_claiming_at_once_take_every_job_exactly_once(database: Database) -> None:
    ids = queue_jobs(database, "alice", 40) + queue_jobs(database, "bob", 20)
    claimed = replicas_claiming_together(database, replicas=4, slots=3)
    everything = [job_id for mine in claimed for job_id in mine]
    assert sorted(everything) == sorted(ids)  # none twice, none left out
    for i, mine in enumerate(claimed):
        for job_id in mine:
            stored = job(database, job_id)
            assert stored.status is JobStatus.RUNNING and stored.owner_replica == f"r-{i}"
            assert stored.started_at is not None and stored.lease_expires_at is not None


def test_a_per_user_cap_holds_across_replicas_claiming_at_once(database: Database) -> None:
    queue_jobs(database, "alice", 12)
    bob = queue_jobs(database, "bob", 2)
    claimed = replicas_claiming_together(database, replicas=4, slots=3, cap=3)
    owners = Counter(job(database, j).owner_name for mine in claimed for j in mine)
    assert owners == {"alice": 3, "bob": 2}
    assert {job(database, j).status for j in bob} == {JobStatus.RUNNING}


def test_fair_share_counts_the_jobs_running_on_other_replicas(database: Database) -> None:
    alice = queue_jobs(database, "alice", 4)
    bob = queue_jobs(database, "bob", 2)
    first = claim(database, "r-one", 2, share=FairShare())
    assert [j.id for j in first] == [alice[0], bob[0]]
    # A different replica, with its own memory of who was served: alice and bob both have one
    # job running elsewhere, so they alternate again instead of alice taking both slots.
    second = claim(database, "r-two", 2, share=FairShare())
    assert sorted(j.id for j in second) == sorted([alice[1], bob[1]])


def test_a_claim_skips_a_job_that_another_transaction_holds(postgres: Database) -> None:
    ids = queue_jobs(postgres, "alice", 3)
    with postgres.session() as holder:
        assert [j.id for j in JobClaims(holder).lock_queued([ids[0]])] == [ids[0]]
        other = Database(postgres.url)
        try:
            claimed = claim(other, "r-other", 3)  # does not wait for the holder
        finally:
            other.dispose()
    assert [j.id for j in claimed] == ids[1:]
    assert job(postgres, ids[0]).status is JobStatus.QUEUED


def test_held_jobs_stay_queued_and_are_claimed_by_no_other_replica(database: Database) -> None:
    """A Ray replica's claim holds jobs QUEUED until Ray placed them; another replica skips
    them (and counts them against the user's cap), until the holder starts, gives back or
    loses them (its lease ran out)."""
    ids = queue_jobs(database, "alice", 3)
    held = claim(database, "r-ray", 2, hold=True)
    assert [j.id for j in held] == ids[:2]
    for job_id in ids[:2]:
        stored = job(database, job_id)
        assert stored.status is JobStatus.QUEUED and stored.owner_replica == "r-ray"
        assert stored.started_at is None and stored.lease_expires_at is not None
    assert claim(database, "r-other", 3, cap=2) == []  # two held: alice's cap is reached
    assert [j.id for j in claim(database, "r-other", 3, hold=True)] == [ids[2]]
    with database.session() as session:
        claims = JobClaims(session)
        started = claims.start_held(ids[0], replica_id="r-ray")
        assert started is not None and started.status is JobStatus.RUNNING
        assert started.started_at is not None
        assert claims.start_held(ids[1], replica_id="r-other") is None  # not its hold
        assert claims.release_held(ids[1], replica_id="r-ray")
        now = database_now(session)
        assert claims.renew("r-ray", [ids[0]], lease_until=now + timedelta(seconds=60)) == {
            ids[0]: False
        }
        assert claims.renew("r-other", [ids[2]], lease_until=now + timedelta(seconds=60)) == {
            ids[2]: False
        }
    assert job(database, ids[1]).owner_replica is None
    assert [j.id for j in claim(database, "r-other", 3, hold=True)] == [ids[1]]
    with database.session() as session:  # r-other is gone: its holds' leases run out
        session.execute(JOBS.update().where(JOBS.c.id == ids[1]).values(lease_expires_at=utcnow()))
    assert [j.id for j in claim(database, "r-ray", 3)] == [ids[1]]
    assert job(database, ids[1]).status is JobStatus.RUNNING


def test_concurrent_submits_respect_the_queue_cap(database: Database) -> None:
    owner = make_user(database, "carol")
    engines = [Database(database.url) for _ in range(6)]
    cap = 3

    def submit(i: int) -> bool:
        with engines[i].session() as session:
            jobs = JobRepository(session)
            if jobs.count_queued(owner.id) >= cap:
                return False
            add_job(session, owner, f"j-carol-{i}")
            return True

    try:
        accepted = run_threads(6, submit)
    finally:
        for engine in engines:
            engine.dispose()
    assert accepted.count(True) == cap
    with database.session() as session:
        assert JobRepository(session).count_queued(owner.id) == cap


# --- leases and takeovers ------------------------------------------------------------------------


def test_leases_are_renewed_only_by_their_owner_and_orphans_taken_over_once(
    database: Database,
) -> None:
    ids = queue_jobs(database, "alice", 3)
    [mine, theirs, lost] = [claim(database, r, 1)[0] for r in ("r-me", "r-live", "r-dead")]
    assert [mine.id, theirs.id, lost.id] == ids
    with database.session() as session:
        claims = JobClaims(session)
        now = database_now(session)
        assert claims.renew(
            "r-me", [mine.id, theirs.id], lease_until=now + timedelta(seconds=60)
        ) == {mine.id: False}
        assert claims.renew("r-live", [theirs.id], lease_until=now + timedelta(seconds=60))
        assert claims.orphans(now=now) == []
    later = lost.lease_expires_at + timedelta(seconds=1)  # only r-dead's lease has run out
    with database.session() as session:
        [orphan] = JobClaims(session).orphans(now=later)
        assert orphan.id == lost.id
    with database.session() as session:
        claims = JobClaims(session)
        taken = claims.take_over(
            orphan, replica_id="r-me", lease_until=later + timedelta(seconds=60), now=later
        )
        assert taken is not None and taken.owner_replica == "r-me"
        again = claims.take_over(orphan, replica_id="r-live", lease_until=later, now=later)
        assert again is None  # no orphan any more: the first taker won
        assert not claims.end_orphan(
            orphan,
            now=later,
            status=JobStatus.ERROR,
            reason=JobReason.INTERRUPTED,
            message="gone",
        )
    assert job(database, lost.id).status is JobStatus.RUNNING


def test_an_orphan_ends_once_and_keeps_the_lease_it_ran_out_of(database: Database) -> None:
    [job_id] = queue_jobs(database, "alice", 1)
    [claimed] = claim(database, "r-dead", 1)
    later = claimed.lease_expires_at + timedelta(seconds=1)
    with database.session() as session:
        claims = JobClaims(session)
        ended = [
            claims.end_orphan(
                claimed,
                now=later,
                status=JobStatus.ERROR,
                reason=JobReason.INTERRUPTED,
                message=f"gone {n}",
            )
            for n in range(2)
        ]
    assert ended == [True, False]
    stored = job(database, job_id)
    assert (stored.status, stored.reason, stored.error_message) == (
        JobStatus.ERROR,
        JobReason.INTERRUPTED,
        "gone 0",
    )
    assert stored.lease_expires_at == claimed.lease_expires_at


def test_a_dead_replicas_jobs_are_orphans_before_their_lease_runs_out(database: Database) -> None:
    queue_jobs(database, "alice", 2)
    [dead, _alive] = [claim(database, r, 1)[0] for r in ("r-dead", "r-alive")]
    with database.session() as session:
        now = database_now(session)
        claims = JobClaims(session)
        assert claims.orphans(now=now) == []
        assert [j.id for j in claims.orphans(now=now, dead_replicas=["r-dead"])] == [dead.id]


def test_a_cancel_request_is_stored_for_running_jobs_only(database: Database) -> None:
    running, queued = queue_jobs(database, "alice", 2)
    assert [j.id for j in claim(database, "r-owner", 1)] == [running]
    with database.session() as session:
        claims = JobClaims(session)
        assert claims.request_cancel(queued) is None
        requested = claims.request_cancel(running)
        assert requested is not None and requested.cancel_requested_at is not None
        now = database_now(session)
        renewed = claims.renew("r-owner", [running], lease_until=now + timedelta(seconds=60))
    assert renewed == {running: True}


# --- the replica registry ------------------------------------------------------------------------


def identity(data_dir: Path, pid: int | None = None, host: str = "host-a") -> ReplicaIdentity:
    me = ReplicaIdentity.of_this_process(url="http://x:1", executor="local", data_dir=data_dir)
    return ReplicaIdentity(me.id, host, pid or me.pid, me.url, me.executor, me.data_dir)


def exited_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_registry_lists_replicas_with_their_running_jobs(
    postgres: Database, tmp_path: Path
) -> None:
    first = ReplicaRegistry(postgres, identity(tmp_path / "a"), single_server=False)
    second = ReplicaRegistry(postgres, identity(tmp_path / "b"), single_server=False)
    assert first.register() == [] and second.register() == []
    queue_jobs(postgres, "alice", 3)
    claim(postgres, second.identity.id, 2)
    listed = {r.id: r for r in first.list()}
    assert {k: v.running_jobs for k, v in listed.items()} == {
        first.identity.id: 0,
        second.identity.id: 2,
    }
    assert listed[first.identity.id].data_dir == str((tmp_path / "a").resolve())
    with postgres.session() as session:
        beat = first.beat(session)
    assert {r.id: r for r in first.list()}[first.identity.id].heartbeat_at == beat
    second.deregister()
    assert [r.id for r in first.list()] == [first.identity.id]
    with postgres.session() as session:  # a row removed as silent comes back at the next beat
        ReplicaRepository(session).remove(first.identity.id)
    with postgres.session() as session:
        first.beat(session)
    assert [r.id for r in first.list()] == [first.identity.id]


def test_an_earlier_run_from_the_same_data_dir_is_known_dead_only_if_its_process_is_gone(
    postgres: Database, tmp_path: Path
) -> None:
    dead = ReplicaRegistry(postgres, identity(tmp_path, exited_pid()), single_server=False)
    alive = ReplicaRegistry(postgres, identity(tmp_path, os.getppid()), single_server=False)
    elsewhere = ReplicaRegistry(
        postgres, identity(tmp_path, exited_pid(), host="host-b"), single_server=False
    )
    for registry in (alive, elsewhere, dead):  # each leaves the ones before it alone
        assert registry.register() == []
    restarted = ReplicaRegistry(postgres, identity(tmp_path), single_server=False)
    assert restarted.register() == [dead.identity.id]
    remaining = {r.id for r in restarted.list()}
    assert remaining == {alive.identity.id, elsewhere.identity.id, restarted.identity.id}


def test_on_sqlite_every_earlier_replica_is_a_leftover(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as database:
        earlier = ReplicaRegistry(database, identity(tmp_path, os.getppid()), single_server=True)
        earlier.register()
        now = ReplicaRegistry(database, identity(tmp_path / "x"), single_server=True)
        assert now.register() == [earlier.identity.id]
        assert [r.id for r in now.list()] == [now.identity.id]


# --- signals -------------------------------------------------------------------------------------


def test_signal_payloads_round_trip_and_unknown_ones_are_ignored() -> None:
    signal = Signal(SignalKind.INTERIMS, "j-1", "r-abc", "42")
    assert Signal.parse(signal.payload()) == signal
    assert Signal.parse("x:r-abc:j-1:") is None
    assert Signal.parse("no colons") is None


async def test_a_signal_arrives_when_its_transaction_commits_and_never_if_it_rolls_back(
    postgres: Database,
) -> None:
    listener = SignalListener(postgres.url)
    await listener.connect()
    received: list[Signal] = []

    async def collect() -> None:
        async for signal in listener.signals():
            received.append(signal)

    task = asyncio.create_task(collect())
    try:
        signals = Signals("r-sender")

        def send() -> None:
            with pytest.raises(RuntimeError), postgres.session() as session:
                signals.queued(session, "j-rolled-back")
                raise RuntimeError("roll back")
            with postgres.session() as session:
                signals.cancel(session, "j-1", "r-owner")
                signals.changed(session, "j-1", "DONE")

        await asyncio.to_thread(send)
        for _ in range(200):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert received == [
            Signal(SignalKind.CANCEL, "j-1", "r-sender", "r-owner"),
            Signal(SignalKind.CHANGED, "j-1", "r-sender", "DONE"),
        ]
    finally:
        task.cancel()
        await listener.aclose()
