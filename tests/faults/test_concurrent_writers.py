"""Many clients writing at once while another process holds the database's write lock for a
moment: requests wait for the lock and succeed; none fails with a 5xx."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from fault_support import api_interims, assert_complete, database_url
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from server_harness import ServerProcess
from server_support import Clients, get_job, metadata, source_b64, submit, upload, wait_until

THREADS = 12
ROUNDS = 3
#: Operations per round: upload, submit, get, cancel, delete job, delete program.
OPS_PER_ROUND = 6
#: How long the outside writer keeps the lock each time (twice in the test).
HOLD_SECONDS = 1.5


@contextmanager
def write_lock(server: ServerProcess) -> Iterator[None]:
    """Another process's write transaction on the server's database, held inside the block.

    SQLite: ``BEGIN IMMEDIATE`` plus a write, which takes the database's one write lock.
    PostgreSQL: a lock on the jobs table that lets readers through but makes every writer of a
    job (submit, cancel, delete, interim results, status changes) wait.
    """
    if server.database_url is None:
        connection = sqlite3.connect(
            server.data_dir / "qruntime.db", timeout=60, isolation_level=None
        )
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE users SET name = name WHERE name = 'admin'")
            yield
            connection.execute("COMMIT")
        finally:
            connection.close()
        return
    engine = create_engine(database_url(server), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE users SET name = name WHERE name = 'admin'")
            # One table only: taking several one after the other can deadlock with a server
            # transaction that writes them in another order (PostgreSQL then aborts one side).
            connection.exec_driver_sql("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


@dataclass
class Tally:
    """Responses seen by the client threads (any thread may add to it)."""

    ok: int = 0
    writes_ok: int = 0
    job_writes_ok: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, response: httpx.Response, expected: int) -> httpx.Response:
        with self.lock:
            if response.status_code == expected:
                self.ok += 1
                if response.request.method != "GET":
                    self.writes_ok += 1
                    if response.request.url.path.startswith("/jobs"):
                        self.job_writes_ok += 1
            else:
                request = response.request
                self.failures.append(
                    f"{request.method} {request.url.path} -> {response.status_code} "
                    f"(expected {expected}): {response.text[:300]}"
                )
        return response


def churn(client: httpx.Client, tally: Tally) -> None:
    try:
        _churn(client, tally)
    except Exception as exc:  # e.g. a client timeout; the test reports it
        with tally.lock:
            tally.failures.append(f"{type(exc).__name__}: {exc}")


def _churn(client: httpx.Client, tally: Tally) -> None:
    """Upload a program, submit a job (it stays queued), look at it, cancel it, delete both."""
    for _ in range(ROUNDS):
        body = {"data": source_b64("slow_publisher"), "metadata": metadata("slow_publisher")}
        program = tally.check(client.post("/programs", json=body), 201)
        if program.status_code != 201:
            return
        program_id = program.json()["id"]
        job = tally.check(
            client.post(
                "/jobs",
                json={"program_id": program_id, "backend": "aer_simulator", "inputs": {"n": 1}},
            ),
            201,
        )
        if job.status_code == 201:
            job_id = job.json()["id"]
            tally.check(client.get(f"/jobs/{job_id}"), 200)
            cancelled = tally.check(client.post(f"/jobs/{job_id}/cancel"), 200)
            if cancelled.status_code == 200 and cancelled.json()["status"] != "CANCELLED":
                tally.failures.append(f"cancel of {job_id} answered {cancelled.json()}")
            tally.check(client.delete(f"/jobs/{job_id}"), 204)
        tally.check(client.delete(f"/programs/{program_id}"), 204)


def test_concurrent_writers_and_an_outside_write_lock_fail_no_request(
    server: ServerProcess, clients: Clients, user: httpx.Client
) -> None:
    # Both job slots taken, so the jobs the threads submit stay queued (cheap to cancel);
    # the publisher keeps the scheduler writing interim results throughout.
    publisher = submit(user, upload(user, "slow_publisher")["id"], {"n": 100_000, "delay": 0.05})
    sleeper = submit(user, upload(user, "sleeps_forever")["id"])
    wait_until(
        lambda: get_job(user, publisher["id"])["interim_count"] >= 1,
        what="the publisher to publish",
        server=server,
    )
    wait_until(
        lambda: get_job(user, sleeper["id"])["status"] == "RUNNING",
        what="the sleeper to take the other slot",
        server=server,
    )
    accounts = [user] + [clients.user(f"w{uuid.uuid4().hex[:10]}") for _ in range(3)]
    tally = Tally()
    total = THREADS * ROUNDS * OPS_PER_ROUND

    threads = [
        threading.Thread(target=churn, args=(accounts[k % len(accounts)], tally), daemon=True)
        for k in range(THREADS)
    ]
    # While it holds the lock, the outside writer never waits for the server: the server's
    # writers wait for it, holding their database connections meanwhile.
    with write_lock(server):
        read_while_locked = user.get(f"/jobs/{publisher['id']}")  # readers are not held up
        for thread in threads:
            thread.start()
        time.sleep(HOLD_SECONDS)  # the threads' first writes queue up behind the lock
        # Nothing the lock covers can have been written (on PostgreSQL: uploads can).
        held_back = tally.writes_ok if server.database_url is None else tally.job_writes_ok
    # A second hold while the threads are in full swing.
    wait_until(lambda: tally.ok + len(tally.failures) >= total // 3, what="a third of the work")
    with write_lock(server):
        time.sleep(HOLD_SECONDS)
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a client thread is stuck"

    assert tally.failures == []
    assert tally.ok == total
    # The outside lock really held the server's writers back, and readers went on meanwhile.
    assert held_back == 0
    assert read_while_locked.status_code == 200, read_while_locked.text
    assert "database is locked" not in server.log()

    # The scheduler's own writes waited too, and lost nothing.
    for job in (publisher, sleeper):
        cancelled = user.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"
    kept = api_interims(user, publisher["id"])
    assert len(kept) == get_job(user, publisher["id"])["interim_count"] >= 1
    assert_complete(kept)
