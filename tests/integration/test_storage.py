"""Storage against real databases: every test runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from storage_support import (
    BACKENDS,
    add_job,
    add_program,
    assert_utc,
    fresh_database,
    make_user,
    run_threads,
    start_job,
)

from qruntime.domain.errors import DuplicateError, NotFoundError
from qruntime.domain.job import JobReason, JobStatus
from qruntime.storage import (
    Database,
    JobRepository,
    ProgramRepository,
    UserRepository,
    open_database,
)
from qruntime.storage.database import alembic_config
from qruntime.storage.job_claims import JobClaims
from qruntime.storage.models import Base, UTCDateTime

TABLES = {
    "users",
    "tokens",
    "programs",
    "jobs",
    "interim_results",
    "log_lines",
    "replicas",
    "server_secrets",
}


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


# --- database and migrations -------------------------------------------------------------------


def test_migrate_twice_is_a_no_op(database: Database) -> None:
    alice = make_user(database)
    database.migrate()
    database.migrate()
    with database.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) >= TABLES
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert list(version) == [ScriptDirectory.from_config(alembic_config()).get_current_head()]
    with database.session() as session:
        assert UserRepository(session).get(alice.id) == alice


def test_concurrent_migrations_from_scratch(database: Database) -> None:
    """Several servers starting at once on a blank database: one migrates, the rest wait."""
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    with database.engine.connect() as connection:
        assert not TABLES & set(inspect(connection).get_table_names())
    starters = [Database(database.url) for _ in range(4)]
    try:
        run_threads(4, lambda i: starters[i].migrate())
    finally:
        for starter in starters:
            starter.dispose()
    make_user(database)


def test_migrations_build_exactly_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_open_database_reopens_a_migrated_database(database: Database) -> None:
    alice = make_user(database)
    again = open_database(database.url)
    try:
        assert (again.dialect, again.url) == (database.dialect, database.url)
        with again.session() as session:
            assert UserRepository(session).list() == [alice]
    finally:
        again.dispose()


def test_connection_settings(database: Database) -> None:
    assert database.dialect in BACKENDS
    if database.dialect != "sqlite":
        return
    with database.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 10000


def test_session_rolls_back_on_error_and_readonly_refuses_writes(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as session:
        UserRepository(session).create("ghost", "user")
        raise RuntimeError("boom")
    with pytest.raises(DBAPIError), database.session(readonly=True) as session:
        UserRepository(session).create("reader", "user")
    with database.session(readonly=True) as session:
        assert UserRepository(session).count() == 0
    make_user(database, "writer")  # a write session after a read-only one on the same pool


# --- users and tokens --------------------------------------------------------------------------


def test_users(database: Database) -> None:
    with database.session() as session:
        users = UserRepository(session)
        bob = users.create("bob", "admin")
        alice = users.create("alice", "user")
        with pytest.raises(DuplicateError):
            users.create("alice", "admin")
        # The failed insert did not spoil the transaction.
        users.create("carol", "open")
    with database.session() as session:
        users = UserRepository(session)
        assert users.get(alice.id) == alice
        assert users.get_by_name("bob") == bob
        assert users.get(9999) is None and users.get_by_name("nobody") is None
        assert [u.name for u in users.list()] == ["alice", "bob", "carol"]
        assert users.count() == 3
        assert_utc(alice.created_at, users.get(alice.id).created_at)


def test_tokens_and_revocation(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        users = UserRepository(session)
        first = users.add_token(alice.id, "a" * 64)
        second = users.add_token(alice.id, "b" * 64)
    assert first.id.startswith("tok_") and len(first.id) == 16
    assert set(first.id[4:]) <= set("0123456789abcdef")
    assert first.revoked_at is None
    with database.session() as session:
        users = UserRepository(session)
        assert users.user_for_token("a" * 64) == alice
        assert users.user_for_token("c" * 64) is None
        assert [t.id for t in users.tokens_of(alice.id)] == [first.id, second.id]
        assert users.revoke_token(first.id) is True
        assert users.revoke_token(first.id) is False
        assert users.revoke_token("tok_000000000000") is False
        assert users.revoke_token_by_hash("b" * 64) is True
        assert users.revoke_token_by_hash("b" * 64) is False
    with database.session() as session:
        users = UserRepository(session)
        assert users.user_for_token("a" * 64) is None
        assert users.user_for_token("b" * 64) is None
        tokens = users.tokens_of(alice.id)
        assert_utc(*(t.revoked_at for t in tokens), *(t.created_at for t in tokens))
        with pytest.raises(IntegrityError), session.begin_nested():
            users.add_token(alice.id, "a" * 64)  # token hashes are unique


# --- programs ----------------------------------------------------------------------------------


def test_program_add_get_and_duplicate_id(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        stored = add_program(session, alice, "hello-world-abc123", version="1.0")
        with pytest.raises(DuplicateError):
            add_program(session, alice, "hello-world-abc123")
    with database.session() as session:
        assert ProgramRepository(session).get("hello-world-abc123") == stored
        assert ProgramRepository(session).get("missing") is None
    assert stored.owner_name == "alice" and stored.version == "1.0" and stored.is_public is False
    assert stored.spec["backend_requirements"] == {"min_num_qubits": 5}
    assert stored.source.startswith("def main")
    assert_utc(stored.created_at, stored.updated_at)


def test_list_visible(database: Database) -> None:
    alice, bob = make_user(database, "alice"), make_user(database, "bob")
    with database.session() as session:
        add_program(session, alice, "zeta-000001")
        add_program(session, alice, "alpha-000002", public=True)
        add_program(session, bob, "beta-000003")
        add_program(session, bob, "alpha-000001", public=True)
    with database.session() as session:
        programs = ProgramRepository(session)

        def ids(viewer: int | None, limit: int | None = None, offset: int = 0):
            page, total = programs.list_visible(viewer_id=viewer, limit=limit, offset=offset)
            return [p.id for p in page], total

        assert ids(alice.id) == (["alpha-000001", "alpha-000002", "zeta-000001"], 3)
        assert ids(bob.id) == (["alpha-000001", "alpha-000002", "beta-000003"], 3)
        everything = ["alpha-000001", "alpha-000002", "beta-000003", "zeta-000001"]
        assert ids(None) == (everything, 4)
        assert ids(None, limit=2, offset=1) == (everything[1:3], 4)
        assert ids(alice.id, limit=2, offset=2) == (["zeta-000001"], 3)
        assert ids(alice.id, limit=5, offset=10) == ([], 3)


def test_program_update_and_delete(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        before = add_program(session, alice, "hello-world-abc123")
    time.sleep(0.002)
    with database.session() as session:
        programs = ProgramRepository(session)
        after = programs.update(
            "hello-world-abc123", description="new", is_public=True, spec={"parameters": {}}
        )
        with pytest.raises(NotFoundError):
            programs.update("missing", description="x")
        with pytest.raises(TypeError):
            programs.update("hello-world-abc123", owner_id=2)
    assert (after.description, after.is_public, after.spec) == ("new", True, {"parameters": {}})
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert_utc(after.updated_at)
    with database.session() as session:
        assert ProgramRepository(session).delete("hello-world-abc123") is True
        assert ProgramRepository(session).delete("hello-world-abc123") is False
        assert ProgramRepository(session).get("hello-world-abc123") is None


def test_jobs_survive_program_deletion(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_program(session, alice, "hello-world-abc123")
        add_job(session, alice, "job-1", program_id="hello-world-abc123")
    with database.session() as session:
        assert ProgramRepository(session).delete("hello-world-abc123")
    with database.session() as session:
        job = JobRepository(session).get("job-1")
    assert job is not None and job.program_id == "hello-world-abc123"
    assert job.program_name == "hello-world"


# --- jobs --------------------------------------------------------------------------------------


def test_job_add_and_get(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        job = add_job(session, alice, "job-1")
    with database.session() as session:
        assert JobRepository(session).get("job-1") == job
        assert JobRepository(session).get("nope") is None
    assert job.status is JobStatus.QUEUED and job.reason is None and job.owner_name == "alice"
    assert (job.inputs, job.max_execution_time, job.backend) == (
        '{"iterations": 3}',
        60.0,
        "aer_simulator",
    )
    assert (job.interim_count, job.log_truncated, job.result) == (0, False, None)
    assert job.started_at is None and job.ended_at is None
    assert_utc(job.created_at)


def test_job_list_filters_and_queued_order(database: Database) -> None:
    alice, bob = make_user(database, "alice"), make_user(database, "bob")
    with database.session() as session:
        for i in range(6):
            owner = alice if i % 2 == 0 else bob
            add_job(session, owner, f"job-{i}", program_id="p-a" if i < 3 else "p-b")
        jobs = JobRepository(session)
        start_job(session, "job-1")
        jobs.finish("job-2", JobStatus.DONE, result="1")
        jobs.finish("job-3", JobStatus.ERROR, reason=JobReason.PROGRAM_FAILED)

    def ids(**filters) -> tuple[list[str], int]:
        with database.session() as session:
            filters.setdefault("owner_id", None)
            filters.setdefault("limit", None)
            page, total = JobRepository(session).list(**filters)
        return [job.id for job in page], total

    assert ids() == ([f"job-{i}" for i in (5, 4, 3, 2, 1, 0)], 6)
    assert ids(owner_id=alice.id) == (["job-4", "job-2", "job-0"], 3)
    assert ids(limit=2, offset=1) == (["job-4", "job-3"], 6)
    assert ids(program_id="p-a") == (["job-2", "job-1", "job-0"], 3)
    assert ids(statuses=[JobStatus.QUEUED, JobStatus.RUNNING]) == (
        ["job-5", "job-4", "job-1", "job-0"],
        4,
    )
    assert ids(statuses={JobStatus.DONE, JobStatus.ERROR}, owner_id=bob.id) == (["job-3"], 1)
    assert ids(statuses=[], limit=5) == ([], 0)
    with database.session() as session:
        heads = JobClaims(session).queued_heads(per_owner=10)
        assert [job.id for job in heads] == ["job-0", "job-4", "job-5"]  # oldest first


def test_a_queued_job_starts_once(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
    with database.session() as session:
        running = start_job(session, "job-1")
        assert start_job(session, "job-1") is None
        assert start_job(session, "missing") is None
    assert running is not None and running.status is JobStatus.RUNNING
    assert_utc(running.started_at)


def test_cancel_queued_only_touches_queued_jobs(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "queued")
        add_job(session, alice, "running")
        jobs = JobRepository(session)
        start_job(session, "running")
        cancelled = jobs.cancel_queued("queued", "cancelled before it started")
        assert jobs.cancel_queued("running", "too late") is None
        assert jobs.cancel_queued("queued", "again") is None
        assert jobs.cancel_queued("missing", "no such job") is None
        assert start_job(session, "queued") is None
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert cancelled.reason is JobReason.CANCELLED_BY_USER
    assert cancelled.error_message == "cancelled before it started"
    with database.session() as session:
        assert JobRepository(session).get("running").status is JobStatus.RUNNING


def test_terminal_status_never_changes(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
        add_job(session, alice, "job-2")
        jobs = JobRepository(session)
        start_job(session, "job-1")
        done = jobs.finish("job-1", JobStatus.DONE, result='{"answer": 42}')
        assert jobs.finish("job-1", JobStatus.ERROR, error_message="late") is None
        assert start_job(session, "job-1") is None
        assert jobs.finish("missing", JobStatus.DONE) is None
        with pytest.raises(ValueError):
            jobs.finish("job-2", JobStatus.RUNNING)
        cancelled = jobs.finish("job-2", JobStatus.CANCELLED, reason=JobReason.CANCELLED_BY_USER)
    with database.session() as session:
        stored = JobRepository(session).get("job-1")
    assert done is not None and stored == done
    assert stored.status is JobStatus.DONE and stored.result == '{"answer": 42}'
    assert stored.error_message is None
    assert_utc(stored.started_at, stored.ended_at)
    assert cancelled is not None and cancelled.reason is JobReason.CANCELLED_BY_USER
    assert cancelled.started_at is None and cancelled.ended_at is not None


# --- interim results and logs ------------------------------------------------------------------


def test_interim_results(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
    with database.session() as session:
        jobs = JobRepository(session)
        for seq in (1, 2, 3):
            jobs.add_interims("job-1", [(seq, f'{{"step": {seq}}}')])
        with pytest.raises(DuplicateError):
            jobs.add_interims("job-1", [(2, "again")])
        with pytest.raises(NotFoundError):
            jobs.add_interims("missing", [(1, "{}")])
        jobs.add_interims("job-1", [(4, "{}")])  # the transaction survived both refusals
    with database.session() as session:
        jobs = JobRepository(session)
        assert jobs.get("job-1").interim_count == 4
        assert [i.seq for i in jobs.interims("job-1")] == [1, 2, 3, 4]
        later = jobs.interims("job-1", after=2)
        assert jobs.interims("job-1", after=4) == []
    assert [(i.seq, i.data) for i in later] == [(3, '{"step": 3}'), (4, "{}")]
    assert all(i.job_id == "job-1" for i in later)
    assert_utc(*(i.created_at for i in later))


def test_append_logs_keeps_the_newest_bytes_and_marks_truncation(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
    with database.session() as session:
        jobs = JobRepository(session)
        assert jobs.append_logs("job-1", [("stdout", "héllo")], cap_bytes=12) == 0  # 6 bytes
        assert jobs.append_logs("job-1", [("stderr", "oops!!")], cap_bytes=12) == 0  # 12 in all
        assert jobs.get("job-1").log_truncated is False
        assert jobs.append_logs("job-1", [("stdout", "x"), ("stdout", "yz")], cap_bytes=12) == 6
        with pytest.raises(NotFoundError):
            jobs.append_logs("missing", [("stdout", "x")], cap_bytes=12)
    with database.session() as session:
        jobs = JobRepository(session)
        job = jobs.get("job-1")
        lines = jobs.logs("job-1")
    assert job.log_truncated is True
    assert [(line.stream, line.text) for line in lines] == [
        ("stderr", "oops!!"),
        ("stdout", "x"),
        ("stdout", "yz"),
    ]
    assert_utc(*(line.created_at for line in lines))


def test_append_logs_drops_a_batch_larger_than_the_cap_from_its_oldest_end(
    database: Database,
) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
        jobs = JobRepository(session)
        batch = [("stdout", f"line {i}") for i in range(10)]  # 6 bytes each
        assert jobs.append_logs("job-1", batch, cap_bytes=20, already_dropped=100) == 100 + 42
    with database.session() as session:
        jobs = JobRepository(session)
        assert [line.text for line in jobs.logs("job-1")] == ["line 7", "line 8", "line 9"]
        assert jobs.get("job-1").log_truncated is True


def test_stored_lines_older_than_dropped_output_go_too(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
        jobs = JobRepository(session)
        assert jobs.append_logs("job-1", [("stderr", "early")], cap_bytes=20) == 0
        # Output between the two batches was dropped in memory: "early" is older than it.
        assert jobs.append_logs("job-1", [("stdout", "late")], cap_bytes=20, already_dropped=9)
        assert [line.text for line in jobs.logs("job-1")] == ["late"]


def test_delete_job_cascades(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")
        add_job(session, alice, "job-2")
        jobs = JobRepository(session)
        for job_id in ("job-1", "job-2"):
            jobs.add_interims(job_id, [(1, "{}")])
            jobs.append_logs(job_id, [("stdout", "line")], cap_bytes=100)
    with database.session() as session:
        assert JobRepository(session).delete("job-1") is True
        assert JobRepository(session).delete("job-1") is False
    with database.session() as session:
        jobs = JobRepository(session)
        assert jobs.get("job-1") is None
        assert jobs.interims("job-1") == [] and jobs.logs("job-1") == []
        assert len(jobs.interims("job-2")) == 1 and len(jobs.logs("job-2")) == 1
        remaining = session.execute(text("SELECT count(*) FROM interim_results")).scalar()
        lines = session.execute(text("SELECT count(*) FROM log_lines")).scalar()
    assert (remaining, lines) == (1, 1)


# --- concurrency -------------------------------------------------------------------------------


def test_concurrent_writers(database: Database) -> None:
    """4 threads, each read-then-write transactions on its own job, plus races on shared ones."""
    alice = make_user(database)
    with database.session() as session:
        for i in range(4):
            add_job(session, alice, f"job-{i}")
        add_job(session, alice, "shared")

    def work(i: int) -> bool:
        job_id = f"job-{i}"
        with database.session() as session:
            start_job(session, job_id)
        for seq in range(1, 51):
            with database.session() as session:
                jobs = JobRepository(session)
                assert jobs.get(job_id).status is JobStatus.RUNNING  # read, then write
                jobs.add_interims(job_id, [(seq, f'{{"seq": {seq}}}')])
                jobs.append_logs(job_id, [("stdout", f"step {seq}")], cap_bytes=10_000)
        with database.session() as session:
            JobRepository(session).finish(job_id, JobStatus.DONE, result=str(i))
            return JobRepository(session).finish("shared", JobStatus.CANCELLED) is not None

    winners = run_threads(4, work)
    assert winners.count(True) == 1
    with database.session() as session:
        jobs = JobRepository(session)
        for i in range(4):
            job = jobs.get(f"job-{i}")
            assert (job.status, job.interim_count, job.result) == (JobStatus.DONE, 50, str(i))
            assert [x.seq for x in jobs.interims(job.id)] == list(range(1, 51))
            assert len(jobs.logs(job.id)) == 50


def test_concurrent_claims_and_duplicate_ids(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_job(session, alice, "job-1")

    def claim(_: int) -> bool:
        with database.session() as session:
            return start_job(session, "job-1") is not None

    assert run_threads(4, claim).count(True) == 1

    def upload(_: int) -> str:
        try:
            with database.session() as session:
                add_program(session, alice, "hello-world")
        except DuplicateError:
            return "duplicate"
        return "stored"

    assert sorted(run_threads(4, upload)) == ["duplicate"] * 3 + ["stored"]


def test_naive_datetimes_are_refused(database: Database) -> None:
    dialect = database.engine.dialect
    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect)
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert UTCDateTime().process_result_value(aware.replace(tzinfo=None), dialect) == aware
