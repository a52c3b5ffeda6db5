"""``qruntime serve --executor ray`` on a real two-node Ray cluster and a fresh PostgreSQL
database: jobs on both nodes, resource requests placed or refused, the limits of the local
executor, a node lost mid-job, and the whole cluster gone and back while jobs wait.

The cluster is this module's own: two tests take it down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from integration.storage_support import fresh_database
from qruntime.web.cookie import SESSION_COOKIE
from ray_cluster import HEAD_IP, WORKER_IP, RayCluster, ray_cluster, ray_server_args, ray_server_env
from server_harness import ServerProcess
from server_support import (
    Clients,
    clients_for,
    finals,
    get_job,
    interim_seqs,
    read_stream,
    running_server,
    submit,
    upload,
    wait_for_job,
    wait_until,
)

#: Each node has one CPU: two one-CPU jobs fill the cluster.
LONG = {"n": 100_000, "delay": 0.1}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with ray_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def server(
    cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("ray")
    with ExitStack() as stack:
        database = stack.enter_context(fresh_database("postgresql", base))
        yield stack.enter_context(
            running_server(
                base,
                database_url=database.url,
                max_concurrent_jobs=4,
                extra_env=ray_server_env(),
                extra_args=ray_server_args(cluster),
            )
        )


@pytest.fixture(scope="module")
def clients(server: ServerProcess) -> Iterator[Clients]:
    with clients_for(server) as made:
        yield made


@pytest.fixture(scope="module")
def user(clients: Clients) -> httpx.Client:
    return clients.user("ray-user")


@pytest.fixture(scope="module")
def publisher(user: httpx.Client) -> str:
    return upload(user, "slow_publisher")["id"]


def executor(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(f"{server.url}/health", timeout=10).json()["executor"]


def wait_for_cluster(server: ServerProcess, nodes: int) -> None:
    wait_until(
        lambda: executor(server)["state"] == "up" and len(executor(server)["nodes"]) == nodes,
        timeout=120,
        what=f"the server to see {nodes} Ray nodes",
        server=server,
    )


def node_of(server: ServerProcess, job_id: str) -> str | None:
    """The address of the Ray node whose agent runs the job (from /health)."""
    nodes = {node["node_id"]: node["address"] for node in executor(server)["nodes"]}
    for agent in executor(server)["agents"]:
        if job_id in agent["running"]:
            return nodes.get(agent["node_id"])
    return None


def cancel_all(user: httpx.Client) -> None:
    for job in user.get("/jobs", params={"pending": "true", "limit": 100}).json()["jobs"]:
        user.post(f"/jobs/{job['id']}/cancel")


def test_health_shows_the_ray_nodes_with_their_free_resources(server: ServerProcess) -> None:
    wait_for_cluster(server, 2)
    state = executor(server)
    assert state["kind"] == "ray" and state["reason"] is None
    assert sorted(node["address"] for node in state["nodes"]) == [HEAD_IP, WORKER_IP]
    for node in state["nodes"]:
        assert node["total"]["CPU"] == 1.0
        assert 0.0 <= node["free"]["CPU"] <= 1.0


def test_jobs_run_on_both_nodes_with_every_interim_result_once(
    server: ServerProcess, user: httpx.Client, publisher: str
) -> None:
    wait_for_cluster(server, 2)
    # Two one-CPU jobs at once can only run on two one-CPU nodes.
    pair = [submit(user, publisher, {"n": 40, "delay": 0.1}) for _ in range(2)]
    wait_until(
        lambda: {node_of(server, job["id"]) for job in pair} == {HEAD_IP, WORKER_IP},
        what="the two jobs to run on the two nodes",
        server=server,
    )
    more = [submit(user, publisher, {"n": 5, "delay": 0.01}) for _ in range(4)]
    for job, n in [*((j, 40) for j in pair), *((j, 5) for j in more)]:
        done = wait_for_job(user, job["id"], server=server)
        assert done["status"] == "DONE", done
        assert user.get(f"/jobs/{job['id']}/results").json() == {"published": n}
        stored = user.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
        assert [(i["seq"], i["data"]) for i in stored] == [(k + 1, {"i": k}) for k in range(n)]
        events = read_stream(user, job["id"])
        assert interim_seqs(events) == list(range(1, n + 1))
        assert [f["status"] for f in finals(events)] == ["DONE"]


def test_a_job_that_fits_but_not_now_waits_queued(
    server: ServerProcess, user: httpx.Client, publisher: str
) -> None:
    wait_for_cluster(server, 2)
    busy = [submit(user, publisher, LONG) for _ in range(2)]
    for job in busy:
        wait_for_job(user, job["id"], ("RUNNING",), server=server)
    waiting = submit(user, publisher, {"n": 2, "delay": 0})
    time.sleep(2.0)  # long enough to be placed, were there room
    assert get_job(user, waiting["id"])["status"] == "QUEUED"
    cancelled = user.post(f"/jobs/{busy[0]['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert get_job(user, busy[0]["id"])["reason"] == "CANCELLED BY USER"
    assert wait_for_job(user, waiting["id"], server=server)["status"] == "DONE"
    cancel_all(user)


@pytest.mark.parametrize(
    ("resources", "named"),
    [
        ({"cpus": 64}, "64 CPUs (resources.cpus); the largest Ray node has 1"),
        ({"gpus": 1}, "1 GPUs (resources.gpus); the largest Ray node has 0"),
        ({"memory_bytes": 2**49}, "bytes of memory (resources.memory_bytes)"),
    ],
)
def test_a_request_no_node_can_ever_hold_is_refused_at_submit(
    server: ServerProcess, user: httpx.Client, publisher: str, resources: dict, named: str
) -> None:
    wait_for_cluster(server, 2)
    before = user.get("/jobs", params={"limit": 0}).json()["total"]
    response = user.post(
        "/jobs", json={"program_id": publisher, "inputs": {"n": 1}, "resources": resources}
    )
    assert response.status_code == 400, response.text
    [problem] = response.json()["error"]["problems"]
    assert problem["location"] == "resources" and named in problem["message"], problem
    assert user.get("/jobs", params={"limit": 0}).json()["total"] == before


def test_a_bad_resource_request_is_named(user: httpx.Client, publisher: str) -> None:
    response = user.post(
        "/jobs", json={"program_id": publisher, "inputs": {"n": 1}, "resources": {"cpu": 1}}
    )
    assert response.status_code == 400, response.text
    [problem] = response.json()["error"]["problems"]
    assert problem["location"] == "resources.cpu" and "unknown resource" in problem["message"]


def test_time_limit_cancel_and_logs_behave_as_with_the_local_executor(
    server: ServerProcess, user: httpx.Client
) -> None:
    chatty = upload(user, "chatty")["id"]
    sleeper = upload(user, "sleeps_forever")["id"]
    printed = wait_for_job(user, submit(user, chatty)["id"], server=server)
    assert printed["status"] == "DONE", printed
    assert user.get(f"/jobs/{printed['id']}/logs").text.strip(), "no output captured"
    too_long = submit(user, sleeper, max_execution_time=2)
    ended = wait_for_job(user, too_long["id"], server=server)
    assert (ended["status"], ended["reason"]) == ("CANCELLED", "RAN TOO LONG"), ended


def test_the_dashboard_shows_the_ray_nodes(server: ServerProcess, user: httpx.Client) -> None:
    wait_for_cluster(server, 2)
    token = user.headers["Authorization"].removeprefix("Bearer ")
    page = httpx.get(
        f"{server.url}/ui/backends", headers={"Cookie": f"{SESSION_COOKIE}={token}"}, timeout=30
    )
    assert page.status_code == 200, page.text
    assert 'id="ray-nodes"' in page.text and "connected, 2 nodes" in page.text
    for address in (HEAD_IP, WORKER_IP):
        assert address in page.text


def test_jobs_of_a_sigkilled_replica_are_adopted_and_finished_by_another(
    cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two replicas with short leases; the one that runs jobs is SIGKILLed mid-job. The jobs
    go on on their Ray nodes, the other replica adopts them once the lease ran out, and each
    ends DONE with every interim result stored and streamed exactly once."""
    wait_until(lambda: cluster.head is not None and cluster.head.alive, what="the cluster")
    base = tmp_path_factory.mktemp("ray-replicas")
    env = {
        **ray_server_env(),  # one namespace: both replicas use the same agents
        "QRUNTIME_REPLICA_HEARTBEAT_SECONDS": "0.5",
        "QRUNTIME_REPLICA_LEASE_SECONDS": "3",
    }
    n = 250
    with ExitStack() as stack:
        database = stack.enter_context(fresh_database("postgresql", base))
        replicas = [
            stack.enter_context(
                running_server(
                    base / name,
                    database_url=database.url,
                    extra_env=env,
                    extra_args=ray_server_args(cluster),
                )
            )
            for name in ("a", "b")
        ]
        first = replicas[0]
        admin = stack.enter_context(first.client())
        token = admin.post("/users", json={"name": "adopted", "role": "user"}).json()["token"]
        user = stack.enter_context(first.client(token))
        publisher = upload(user, "slow_publisher")["id"]
        jobs = [submit(user, publisher, {"n": n, "delay": 0.1}) for _ in range(2)]
        for job in jobs:
            wait_until(lambda j=job: get_job(user, j["id"])["interim_count"] >= 3, server=first)

        def owners() -> dict[str, int]:
            health = httpx.get(f"{first.url}/health", timeout=10).json()
            return {r["url"]: r["running_jobs"] for r in health["replicas"]}

        victim = max(replicas, key=lambda r: owners().get(r.url, 0))
        survivor = replicas[1 - replicas.index(victim)]
        assert owners().get(victim.url, 0) >= 1, owners()
        victim.kill()

        follower = stack.enter_context(survivor.client(token))
        for job in jobs:
            done = wait_for_job(follower, job["id"], timeout=180, server=survivor)
            assert done["status"] == "DONE", done
            assert follower.get(f"/jobs/{job['id']}/results").json() == {"published": n}
            body = follower.get(f"/jobs/{job['id']}/interim_results").json()
            stored = [(i["seq"], i["data"]) for i in body["interim_results"]]
            assert stored == [(k + 1, {"i": k}) for k in range(n)]
            events = read_stream(follower, job["id"])
            assert interim_seqs(events) == list(range(1, n + 1))
            assert [f["status"] for f in finals(events)] == ["DONE"]


def test_a_node_lost_mid_job_ends_its_job_in_error_naming_the_node(
    server: ServerProcess, cluster: RayCluster, user: httpx.Client, publisher: str
) -> None:
    wait_for_cluster(server, 2)
    jobs = [submit(user, publisher, LONG) for _ in range(2)]
    wait_until(
        lambda: {node_of(server, job["id"]) for job in jobs} == {HEAD_IP, WORKER_IP},
        what="a job on each node",
        server=server,
    )
    [on_worker] = [job for job in jobs if node_of(server, job["id"]) == WORKER_IP]
    wait_until(lambda: get_job(user, on_worker["id"])["interim_count"] >= 3, server=server)
    assert cluster.worker is not None
    cluster.worker.kill()
    lost = wait_for_job(user, on_worker["id"], server=server)
    assert lost["status"] == "ERROR", lost
    assert WORKER_IP in lost["error_message"] and "lost" in lost["error_message"], lost
    kept = user.get(f"/jobs/{on_worker['id']}/interim_results").json()["interim_results"]
    assert [i["seq"] for i in kept] == list(range(1, len(kept) + 1)) and len(kept) >= 3
    cancel_all(user)
    cluster.start_worker()
    wait_for_cluster(server, 2)


def test_the_cluster_gone_and_back_keeps_queued_jobs_and_ends_orphans(
    server: ServerProcess, cluster: RayCluster, user: httpx.Client, publisher: str
) -> None:
    wait_for_cluster(server, 2)
    running = submit(user, publisher, LONG)
    wait_until(lambda: get_job(user, running["id"])["interim_count"] >= 2, server=server)
    cluster.stop()
    wait_until(
        lambda: executor(server)["state"] == "down",
        timeout=120,
        what="the server to see Ray down",
        server=server,
    )
    assert executor(server)["reason"]
    queued = [submit(user, publisher, {"n": 3, "delay": 0}) for _ in range(2)]
    time.sleep(2.0)
    for job in queued:
        waiting = get_job(user, job["id"])
        assert waiting["status"] == "QUEUED", waiting
        assert "ray executor" in (waiting["waiting_reason"] or ""), waiting

    cluster.start()  # a new head on the same address: it knows nothing of the old one
    wait_for_cluster(server, 2)
    for job in queued:
        done = wait_for_job(user, job["id"], server=server)
        assert done["status"] == "DONE", done
        assert user.get(f"/jobs/{job['id']}/results").json() == {"published": 3}
    orphan = wait_for_job(user, running["id"], server=server)
    assert orphan["status"] == "ERROR" and "agent" in orphan["error_message"], orphan
