"""The plain DB-API submit and reads of every job: the same rows as the repositories', the
same refusals (queue cap and budget counted under the owner's lock, taken ids), on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_support import BACKENDS, add_program, fresh_database, make_user, run_threads

from qruntime.domain.errors import DuplicateError, QuotaExceededError
from qruntime.domain.job import JobReason, JobStatus
from qruntime.storage import Database, JobRepository, ProgramRepository
from qruntime.storage.hot_path import HotPath
from qruntime.storage.hot_reads import HotReads


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


def fields(job_id: str, owner_id: int, **extra: object) -> dict:
    return {
        "id": job_id,
        "program_id": "echo-abc123",
        "program_name": "echo",
        "owner_id": owner_id,
        "backend": "aer_simulator",
        "inputs": '{"n": 1}',
        "source": "def main(backend, user_messenger, n=0):\n    return n\n",
        "max_execution_time": 60.0,
        **extra,
    }


def admit_all(queued: int, stored_bytes: int) -> None:
    pass


def test_a_submitted_job_reads_back_as_the_repository_reads_it(database: Database) -> None:
    alice = make_user(database)
    hot, reads = HotPath(database), HotReads.of(database)
    told: list[tuple[int, int]] = []
    first = hot.submit(
        owner_name="alice",
        admit=lambda *usage: told.append(usage),
        **fields("job-1", alice.id, resources='{"cpus": 1}', tags=["a", "b"]),
    )
    second = hot.submit(
        owner_name="alice", admit=lambda *usage: told.append(usage), **fields("job-2", alice.id)
    )
    size = len(fields("job-1", 0)["inputs"]) + len(fields("job-1", 0)["source"])
    assert told == [(0, 0), (1, size)]  # queued jobs and stored bytes before each
    with database.session(readonly=True) as session:
        assert [first, second] == [JobRepository(session).get(f"job-{n}") for n in (1, 2)]
    assert (first.tags, first.resources, first.owner_name) == (("a", "b"), '{"cpus": 1}', "alice")
    hot.add_interims("job-1", [(1, '{"a": 1}'), (2, "[2]")])
    hot.finish("job-2", JobStatus.ERROR, reason=JobReason.PROGRAM_FAILED, error_message="x")
    with database.session(readonly=True) as session:
        jobs = JobRepository(session)
        expected = [jobs.get("job-1"), jobs.get("job-2")]
        interims = jobs.interims("job-1", after=1)
    assert [i.seq for i in interims] == [2] and expected[1].ended_at is not None
    assert [reads.job("job-1"), reads.job("job-2")] == expected
    assert reads.job_and_interims("job-1", after=1) == (expected[0], interims)
    assert reads.job_and_interims("missing") == (None, [])
    assert reads.job("missing") is None


def test_a_program_reads_back_as_the_repository_reads_it(database: Database) -> None:
    alice = make_user(database)
    with database.session() as session:
        add_program(session, alice, "echo-abc123", public=True, version="1.2")
        expected = ProgramRepository(session).get("echo-abc123")
    assert HotReads.of(database).program("echo-abc123") == expected
    assert HotReads.of(database).program("missing") is None


def test_a_refused_or_duplicate_submit_stores_nothing(database: Database) -> None:
    alice = make_user(database)
    hot = HotPath(database)
    hot.submit(owner_name="alice", admit=admit_all, **fields("job-1", alice.id))

    def refuse(queued: int, stored_bytes: int) -> None:
        raise QuotaExceededError(f"{queued} queued")

    with pytest.raises(QuotaExceededError, match="1 queued"):
        hot.submit(owner_name="alice", admit=refuse, **fields("job-2", alice.id))
    with pytest.raises(DuplicateError, match="job-1"):
        hot.submit(owner_name="alice", admit=admit_all, **fields("job-1", alice.id))
    with database.session(readonly=True) as session:
        listed, total = JobRepository(session).list(owner_id=alice.id, limit=None)
    assert total == 1 and [job.inputs for job in listed] == ['{"n": 1}']


def test_concurrent_submits_keep_a_queue_cap(database: Database) -> None:
    """Each submit counts the queue under the owner's lock: 8 at once, a cap of 3, 3 stored."""
    alice = make_user(database)
    hot = HotPath(database)

    def cap_of_3(queued: int, stored_bytes: int) -> None:
        if queued >= 3:
            raise QuotaExceededError("full")

    def submit(i: int) -> bool:
        try:
            hot.submit(owner_name="alice", admit=cap_of_3, **fields(f"job-{i}", alice.id))
        except QuotaExceededError:
            return False
        return True

    assert sorted(run_threads(8, submit)) == [False] * 5 + [True] * 3
