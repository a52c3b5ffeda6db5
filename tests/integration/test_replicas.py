"""Three real ``qruntime serve`` replicas on one fresh PostgreSQL database, each with its own
data directory and port: jobs submitted to any replica, streamed from any other, cancelled
through any, and replicas restarted or SIGKILLed while they run jobs.

Heartbeats and leases are short here (0.5 s and 5 s) and the streams' keep-alive pings (which
also re-read the database) are far apart, so a stream that follows a job run elsewhere ends
only if the owner's signal woke it.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from storage_support import fresh_database

from qruntime.settings import Settings
from qruntime.storage import Database, JobRepository, StoredJob
from server_harness import ServerProcess
from server_support import (
    assert_error,
    create_user,
    finals,
    get_job,
    interim_seqs,
    read_stream,
    submit,
    upload,
    wait_for_job,
    wait_until,
    worker_pids,
)

HEARTBEAT, LEASE = 0.5, 5.0
ENV = {
    "QRUNTIME_REPLICA_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "QRUNTIME_REPLICA_LEASE_SECONDS": str(LEASE),
    "QRUNTIME_STREAM_PING_SECONDS": "600",
}
SLOTS = 2  # per replica
LONG = {"n": 100_000, "delay": 0.2}  # runs until cancelled or its replica dies


@dataclass
class Cluster:
    database: Database
    servers: list[ServerProcess]
    token: str  # alice's, valid on every replica
    admin_token: str  # likewise

    def client(self, server: ServerProcess) -> httpx.Client:
        return server.client(self.token)

    def stored(self, job_id: str) -> StoredJob:
        with self.database.session(readonly=True) as session:
            job = JobRepository(session).get(job_id)
        assert job is not None
        return job

    def replica_id(self, server: ServerProcess) -> str:
        return server.health(self.admin_token)["replica"]

    def owner(self, job_id: str) -> ServerProcess:
        owner = self.stored(job_id).owner_replica
        return next(s for s in self.servers if self.replica_id(s) == owner)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("replicas")
    with fresh_database("postgresql", base) as database:
        servers = [
            ServerProcess(
                data_dir=base / name / "data",
                accounts_file=base / name / "accounts.json",
                database_url=database.url,
                max_concurrent_jobs=SLOTS,
                extra_env=ENV,
            )
            for name in "abc"
        ]
        try:
            with ThreadPoolExecutor(len(servers)) as pool:  # all at once, on an empty database
                list(pool.map(ServerProcess.start, servers))
            [admin_token] = [
                s.admin_token for s in servers if (s.data_dir / "admin-token").exists()
            ]
            with servers[0].client(admin_token) as admin:
                token = create_user(admin, "alice")["token"]
            yield Cluster(database, servers, token, admin_token)
        finally:
            for server in servers:
                server.stop()


@pytest.fixture(scope="module")
def programs(cluster: Cluster) -> dict[str, str]:
    with cluster.client(cluster.servers[0]) as alice:
        return {name: upload(alice, name)["id"] for name in ("tagged_publisher", "sleeps_forever")}


def others(cluster: Cluster, server: ServerProcess) -> list[ServerProcess]:
    return [s for s in cluster.servers if s is not server and s.process.poll() is None]


def expected_interims(tag: str, n: int) -> list[dict[str, Any]]:
    return [{"tag": tag, "k": k} for k in range(n)]


def test_replicas_report_each_other(cluster: Cluster) -> None:
    ids = {cluster.replica_id(s) for s in cluster.servers}
    for server in cluster.servers:
        health = server.health(cluster.admin_token)
        assert health["database"] == "postgresql"
        listed = {r["id"]: r for r in health["replicas"]}
        assert set(listed) == ids
        me = listed[health["replica"]]
        assert (me["pid"], me["url"], me["executor"]) == (server.process.pid, server.url, "local")


def test_jobs_submitted_anywhere_stream_from_anywhere_each_interim_once(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    rng = random.Random(15)
    plans = [(f"t{i:03d}", rng.randint(1, 5), *rng.sample(cluster.servers, 2)) for i in range(200)]

    def run(plan: tuple[str, int, ServerProcess, ServerProcess]) -> tuple[str, str]:
        tag, n, submit_to, stream_from = plan
        with cluster.client(submit_to) as submitter, cluster.client(stream_from) as reader:
            inputs = {"tag": tag, "n": n, "delay": 0.01}
            job_id = submit(submitter, programs["tagged_publisher"], inputs)["id"]
            events = read_stream(reader, job_id)
            assert interim_seqs(events) == list(range(1, n + 1)), (tag, events)
            data = [e.json()["data"] for e in events if e.event == "interim"]
            assert data == expected_interims(tag, n)
            [final] = finals(events)
            assert final["status"] == "DONE", final
            assert json.loads(final["result"]) == {"tag": tag, "n": n}
        return tag, job_id

    with ThreadPoolExecutor(12) as pool:
        jobs = dict(pool.map(run, plans))

    owners = {cluster.stored(job_id).owner_replica for job_id in jobs.values()}
    assert len(owners) >= 2, owners  # the queue is shared: several replicas ran its jobs
    for tag, n, _, _ in plans[:40]:  # results and logs read back through a third replica
        with cluster.client(rng.choice(cluster.servers)) as alice:
            assert alice.get(f"/jobs/{jobs[tag]}/results").json() == {"tag": tag, "n": n}
            log = alice.get(f"/jobs/{jobs[tag]}/logs").text
            assert log.splitlines().count(f"started {tag}") == 1, log  # it ran once
    for tag, _, _, _ in plans:
        assert cluster.stored(jobs[tag]).status.value == "DONE"
    for tag, _, deleter, reader in plans[:5]:  # deleted through one replica, gone on another
        with cluster.client(deleter) as alice, cluster.client(reader) as other:
            assert alice.delete(f"/jobs/{jobs[tag]}").status_code == 204
            assert other.get(f"/jobs/{jobs[tag]}").status_code == 404
            assert other.get(f"/jobs/{jobs[tag]}/stream").status_code == 404


def test_cancel_through_another_replica_stops_the_job_where_it_runs(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    a = cluster.servers[0]
    with cluster.client(a) as alice:
        job_id = submit(alice, programs["sleeps_forever"])["id"]
        wait_for_job(alice, job_id, ("RUNNING",), server=a)
    owner = cluster.owner(job_id)
    wait_until(lambda: worker_pids(owner.process.pid), what="the job's worker", server=owner)
    via, watcher = others(cluster, owner)
    with cluster.client(via) as alice:
        cancelled = alice.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == (
        "CANCELLED",
        "CANCELLED BY USER",
    )
    wait_until(lambda: not worker_pids(owner.process.pid), what="the worker to be stopped")
    with cluster.client(watcher) as alice:
        [final] = finals(read_stream(alice, job_id))
    assert (final["status"], final["reason"]) == ("CANCELLED", "CANCELLED BY USER")


def test_a_dashboard_form_made_by_one_replica_is_accepted_by_another(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    a, b = cluster.servers[:2]
    cookie = {"Cookie": f"qruntime_session={cluster.token}"}
    with cluster.client(a) as alice:
        job_id = submit(alice, programs["sleeps_forever"])["id"]
        wait_for_job(alice, job_id, ("RUNNING",), server=a)
    page = httpx.get(f"{a.url}/ui/jobs/{job_id}", headers=cookie, timeout=30)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match is not None, page.text
    sent = httpx.post(
        f"{b.url}/ui/jobs/{job_id}/cancel",
        headers={**cookie, "Origin": b.url},
        data={"csrf_token": match.group(1)},
        timeout=60,
    )
    assert sent.status_code == 303, sent.text
    assert cluster.stored(job_id).status.value == "CANCELLED"


def test_a_revoked_token_is_refused_at_once_here_and_within_the_cache_bound_elsewhere(
    cluster: Cluster,
) -> None:
    """Each replica caches checked tokens for ``token_cache_seconds``; the one that revokes
    empties its cache, the others read the database again once their entry is that old."""
    bound = Settings.model_fields["token_cache_seconds"].default
    here, *elsewhere = cluster.servers
    with here.client(cluster.admin_token) as admin:
        token = create_user(admin, "revoked-soon")["token"]
        for server in cluster.servers:  # now cached on every replica
            with server.client(token) as user:
                assert user.get("/users/me").status_code == 200
        revoke = admin.post("/tokens/revoke", json={"token": token})
        assert revoke.status_code == 204, revoke.text
    revoked_at = time.monotonic()
    with here.client(token) as user:
        assert_error(user.get("/users/me"), 401, "not_authenticated")
    time.sleep(max(0.0, revoked_at + bound + 0.1 - time.monotonic()))
    for server in elsewhere:
        with server.client(token) as user:
            assert_error(user.get("/users/me"), 401, "not_authenticated")


def test_signals_missed_while_the_listener_reconnects_are_caught_up(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    a, b = cluster.servers[:2]
    with cluster.client(a) as submitter, cluster.client(b) as reader:
        inputs = {"tag": "cut", "n": 30, "delay": 0.05}
        job_id = submit(submitter, programs["tagged_publisher"], inputs)["id"]
        with cluster.database.engine.connect() as connection:  # every replica loses its link
            cut = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() "
                    "AND application_name LIKE 'qruntime-listener%'"
                )
            ).all()
        assert len(cut) == len(cluster.servers)
        events = read_stream(reader, job_id)
    assert interim_seqs(events) == list(range(1, 31))
    assert finals(events)[0]["status"] == "DONE"


def test_a_replica_whose_job_was_taken_over_stops_it_and_records_nothing_more(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    with cluster.client(cluster.servers[0]) as alice:
        inputs = {"tag": "taken", **LONG, "delay": 0.05}
        job_id = submit(alice, programs["tagged_publisher"], inputs)["id"]
        wait_for_job(alice, job_id, ("RUNNING",))
    owner = cluster.owner(job_id)
    wait_until(lambda: worker_pids(owner.process.pid), what="the job's worker", server=owner)
    with cluster.database.session() as session:  # as if another replica had taken it over
        session.execute(
            text("UPDATE jobs SET owner_replica = 'r-usurper' WHERE id = :id"), {"id": job_id}
        )
    wait_until(
        lambda: not worker_pids(owner.process.pid),
        what="the owner to stop the job it lost",
        server=owner,
    )
    seen: list[int] = []

    def settled() -> bool:  # a write already under way when the worker stopped may land
        seen.append(cluster.stored(job_id).interim_count)
        return len(seen) > 1 and seen[-1] == seen[-2]

    wait_until(settled, interval=0.5, what="the interim count to settle")
    taken = cluster.stored(job_id)
    assert (taken.status.value, taken.owner_replica) == ("RUNNING", "r-usurper")
    # r-usurper never beats: its lease runs out and a live replica ends the job.
    with cluster.client(owner) as alice:
        job = wait_for_job(alice, job_id, server=owner)
    assert (job["status"], job["reason"]) == ("ERROR", "INTERRUPTED"), job
    assert "the replica that ran this job is gone (r-usurper" in job["error_message"], job
    assert job["interim_count"] == taken.interim_count  # the first owner stored nothing more


def test_a_takeover_that_waits_holds_up_no_replicas_heartbeat(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    """An orphan whose row this test keeps locked: every replica's takeover of it waits on the
    lock for longer than a lease, and meanwhile every replica still beats and renews its own
    job's lease (a takeover inside the heartbeat let them run out)."""
    with cluster.client(cluster.servers[0]) as alice:
        own, orphan = (submit(alice, programs["sleeps_forever"], {"seconds": 120})["id"]
                       for _ in range(2))  # fmt: skip
        for job_id in (own, orphan):
            wait_for_job(alice, job_id, ("RUNNING",))
        with cluster.database.session() as session:  # its owner "dies" in 2 s
            session.execute(
                text(
                    "UPDATE jobs SET owner_replica = 'r-gone-for-good', "
                    "lease_expires_at = now() + interval '2 seconds' WHERE id = :id"
                ),
                {"id": orphan},
            )
        with cluster.database.engine.connect() as locker:
            locker.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": orphan})
            until = time.monotonic() + LEASE + 4
            while time.monotonic() < until:
                with cluster.database.engine.connect() as probe:
                    own_lease_left, stalest_beat, orphan_status = probe.execute(
                        text(
                            "SELECT (SELECT extract(epoch FROM lease_expires_at - now()) "
                            "FROM jobs WHERE id = :own), "
                            "(SELECT extract(epoch FROM now() - min(heartbeat_at)) FROM replicas), "
                            "(SELECT status FROM jobs WHERE id = :orphan)"
                        ),
                        {"own": own, "orphan": orphan},
                    ).one()
                assert orphan_status == "RUNNING"  # its takeover is still waiting on the lock
                assert own_lease_left > 0, "a replica's own job's lease ran out"
                assert stalest_beat < LEASE / 2, f"a replica last beat {stalest_beat:.1f} s ago"
                time.sleep(0.3)
            locker.rollback()
        job = wait_for_job(alice, orphan)
        assert (job["status"], job["reason"]) == ("ERROR", "INTERRUPTED"), job
        assert "r-gone-for-good" in job["error_message"], job
        assert get_job(alice, own)["status"] == "RUNNING"
        cancel_all(alice, [own])


def start_long_jobs(cluster: Cluster, programs: dict[str, str], count: int) -> list[str]:
    with cluster.client(cluster.servers[0]) as alice:
        ids = [
            submit(alice, programs["tagged_publisher"], {"tag": f"long{i}", **LONG})["id"]
            for i in range(count)
        ]
        for job_id in ids:
            wait_for_job(alice, job_id, ("RUNNING",))
    return ids


def by_owner(cluster: Cluster, job_ids: list[str]) -> dict[str, list[str]]:
    owned: dict[str, list[str]] = {}
    for job_id in job_ids:
        owned.setdefault(cluster.stored(job_id).owner_replica or "", []).append(job_id)
    return owned


def cancel_all(client: httpx.Client, job_ids: list[str]) -> None:
    for job_id in job_ids:
        response = client.post(f"/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "CANCELLED", response.json()


def test_a_restarted_replica_interrupts_only_its_own_earlier_jobs(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    jobs = start_long_jobs(cluster, programs, SLOTS * len(cluster.servers))
    c = cluster.servers[2]
    old_id = cluster.replica_id(c)
    owned = by_owner(cluster, jobs)
    assert sorted(map(len, owned.values())) == [SLOTS] * 3, owned
    elsewhere = [j for j in jobs if j not in owned[old_id]]
    progress = {j: cluster.stored(j).interim_count for j in elsewhere}

    c.kill()
    c.start()  # same data directory: its earlier run is known dead at once
    with cluster.client(c) as alice:
        for job_id in owned[old_id]:
            job = get_job(alice, job_id)
            assert (job["status"], job["reason"]) == ("ERROR", "INTERRUPTED"), job
            assert "server stopped" in job["error_message"], job
            assert old_id in job["error_message"], job
        for job_id in elsewhere:
            assert get_job(alice, job_id)["status"] == "RUNNING"
            wait_until(
                lambda job_id=job_id: cluster.stored(job_id).interim_count > progress[job_id],
                what=f"job {job_id} to go on publishing",
            )
        cancel_all(alice, elsewhere)  # through the restarted replica
    for job_id in elsewhere:
        assert cluster.stored(job_id).reason.value == "CANCELLED BY USER"


def test_a_killed_replicas_jobs_end_after_its_lease_and_the_queue_runs_elsewhere(
    cluster: Cluster, programs: dict[str, str]
) -> None:
    a, b, c = cluster.servers
    blockers = start_long_jobs(cluster, programs, SLOTS * len(cluster.servers))
    owned = by_owner(cluster, blockers)
    victim_id = cluster.replica_id(a)
    with cluster.client(a) as alice:
        queued = {
            f"q{i}": submit(alice, programs["tagged_publisher"], {"tag": f"q{i}", "n": 3})["id"]
            for i in range(3)
        }
    for job_id in queued.values():
        assert cluster.stored(job_id).status.value == "QUEUED"

    killed_at = datetime.now(UTC)
    a.kill()
    interrupted, cancelled = owned[victim_id]
    with ThreadPoolExecutor(1) as pool, cluster.client(c) as alice:
        # A cancel of a job whose replica is gone: the takeover ends it CANCELLED (the request
        # answers at once if that happens within its wait, else 202 while it is RUNNING).
        cancel = pool.submit(alice.post, f"/jobs/{cancelled}/cancel")
        cancel_all(alice, owned[cluster.replica_id(b)])  # free b's slots: the queue runs there
        for tag, job_id in queued.items():
            done = wait_for_job(alice, job_id, server=b)
            assert done["status"] == "DONE", done
            assert alice.get(f"/jobs/{job_id}/results").json() == {"tag": tag, "n": 3}
            stored = alice.get(f"/jobs/{job_id}/interim_results").json()["interim_results"]
            assert [i["data"] for i in stored] == expected_interims(tag, 3)

        gone = f"the replica that ran this job is gone ({victim_id}"
        job = wait_for_job(alice, interrupted, server=b)
        assert (job["status"], job["reason"]) == ("ERROR", "INTERRUPTED"), job
        assert gone in job["error_message"], job
        answer = cancel.result(timeout=120)
        assert (answer.status_code, answer.json()["status"]) in (
            (200, "CANCELLED"),
            (202, "RUNNING"),
        )
        job = wait_for_job(alice, cancelled, server=b)
        assert (job["status"], job["reason"]) == ("CANCELLED", "CANCELLED BY USER"), job
        assert job["error_message"].startswith(f"cancelled by request; {gone}"), job
        for job_id in owned[victim_id]:
            stored = cluster.stored(job_id)
            assert stored.lease_expires_at is not None and stored.ended_at is not None
            assert stored.ended_at >= stored.lease_expires_at > killed_at  # never before
            assert stored.interim_count > 0
        cancel_all(alice, owned[cluster.replica_id(c)])

    def victim_gone() -> bool:
        health = b.health(cluster.admin_token)
        return victim_id not in {r["id"] for r in health["replicas"]}

    wait_until(victim_gone, what="the dead replica to leave the registry", server=b)


@pytest.fixture(autouse=True)
def _no_job_left_running(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with every slot free, whatever the one before left behind."""
    yield
    with cluster.database.engine.connect() as connection:
        running = connection.execute(
            text("SELECT count(*) FROM jobs WHERE status IN ('QUEUED', 'RUNNING')")
        ).scalar_one()
    assert running == 0, f"{request.node.name} left {running} jobs queued or running"
