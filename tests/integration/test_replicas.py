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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from storage_support import fresh_database

from qruntime.storage import Database, JobRepository, StoredJob
from server_harness import ServerProcess
from server_support import (
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

    def client(self, server: ServerProcess) -> httpx.Client:
        return server.client(self.token)

    def stored(self, job_id: str) -> StoredJob:
        with self.database.session(readonly=True) as session:
            job = JobRepository(session).get(job_id)
        assert job is not None
        return job

    def replica_id(self, server: ServerProcess) -> str:
        return httpx.get(f"{server.url}/health", timeout=10).json()["replica"]

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
            yield Cluster(database, servers, token)
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
        health = httpx.get(f"{server.url}/health", timeout=10).json()
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
    with cluster.client(c) as alice:  # free b's slots: the queued jobs run there
        cancel_all(alice, owned[cluster.replica_id(b)])
        for tag, job_id in queued.items():
            done = wait_for_job(alice, job_id, server=b)
            assert done["status"] == "DONE", done
            assert alice.get(f"/jobs/{job_id}/results").json() == {"tag": tag, "n": 3}
            stored = alice.get(f"/jobs/{job_id}/interim_results").json()["interim_results"]
            assert [i["data"] for i in stored] == expected_interims(tag, 3)

        for job_id in owned[victim_id]:
            job = wait_for_job(alice, job_id, server=b)
            assert (job["status"], job["reason"]) == ("ERROR", "INTERRUPTED"), job
            assert f"replica that ran this job is gone ({victim_id}" in job["error_message"]
            stored = cluster.stored(job_id)
            assert stored.lease_expires_at is not None and stored.ended_at is not None
            assert stored.ended_at >= stored.lease_expires_at > killed_at  # never before
            assert stored.interim_count > 0
        cancel_all(alice, owned[cluster.replica_id(c)])

    def victim_gone() -> bool:
        health = httpx.get(f"{b.url}/health", timeout=10).json()
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
