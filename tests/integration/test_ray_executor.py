"""``qruntime serve --executor ray`` on a real two-node Ray cluster and a fresh PostgreSQL
database: jobs on both nodes, resource requests placed or refused, the limits of the local
executor, a node lost mid-job, and the whole cluster gone and back while jobs wait.

The cluster is this module's own: two tests take it down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from integration.storage_support import fresh_database
from qruntime.storage import Database
from qruntime.web.cookie import SESSION_COOKIE
from ray_cluster import HEAD_IP, WORKER_IP, RayCluster, ray_cluster, ray_server_args, ray_server_env
from repo_paths import REPO
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


@dataclass(frozen=True)
class AgentRole:
    name: str
    url: str


@contextmanager
def agent_role(database: Database) -> Iterator[AgentRole]:
    """The agents' own role, made by the statements docs/deployment.md gives (under a name of
    this test run's own: roles belong to the whole PostgreSQL server); dropped afterwards."""
    doc = (REPO / "docs" / "deployment.md").read_text()
    section = doc.split("### The agents' database role", 1)[1]
    statements = section.split("```sql\n", 1)[1].split("```", 1)[0]
    name = f"qrt_agent_{uuid.uuid4().hex[:8]}"
    with database.engine.begin() as connection:
        connection.exec_driver_sql(statements.replace("qruntime_agent", name))
    url = make_url(database.url).set(username=name, password="choose-one")
    try:
        yield AgentRole(name, url.render_as_string(hide_password=False))
    finally:
        with database.engine.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{name}"')
            connection.exec_driver_sql(f'DROP ROLE "{name}"')


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("ray-db")) as made:
        yield made


@pytest.fixture(scope="module")
def role(database: Database) -> Iterator[AgentRole]:
    with agent_role(database) as made:
        yield made


@pytest.fixture(scope="module")
def namespace_env() -> dict[str, str]:
    """The module server's Ray namespace: a replica started with it shares its agents."""
    return ray_server_env()


@pytest.fixture(scope="module")
def server(
    cluster: RayCluster,
    database: Database,
    role: AgentRole,
    namespace_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """Its agents store events as the limited role of docs/deployment.md."""
    base = tmp_path_factory.mktemp("ray")
    with running_server(
        base,
        database_url=database.url,
        max_concurrent_jobs=4,
        extra_env={
            **namespace_env,
            "QRUNTIME_RAY_AGENT_DATABASE_URL": role.url,
            # A cancel that cannot reach its job waits lease + 3 heartbeats (9 s), not 20 s.
            "QRUNTIME_REPLICA_HEARTBEAT_SECONDS": "1",
            "QRUNTIME_REPLICA_LEASE_SECONDS": "6",
        },
        extra_args=ray_server_args(cluster),
    ) as started:
        yield started


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
    return server.health()["executor"]


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


def agent_pid(server: ServerProcess, address: str) -> int | None:
    """The pid of the agent on the node at ``address``, once it reports (from /health)."""
    nodes = {node["node_id"]: node["address"] for node in executor(server)["nodes"]}
    for agent in executor(server)["agents"]:
        if nodes.get(agent["node_id"]) == address:
            return agent["pid"]
    return None


def free_cpus(server: ServerProcess) -> dict[str, float]:
    return {node["address"]: node["free"].get("CPU", 0.0) for node in executor(server)["nodes"]}


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


def test_a_replica_whose_settings_differ_from_the_running_agents_warns(
    server: ServerProcess,
    cluster: RayCluster,
    database: Database,
    namespace_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The agents keep the settings of the replica that started them; a second replica on
    the same agents with another sandbox limit says so in its log and in /health, naming the
    setting and both values. The first replica, whose settings the agents have, says nothing."""
    wait_for_cluster(server, 2)
    wait_until(lambda: len(executor(server)["agents"]) == 2, what="both agents", server=server)
    assert executor(server)["agent_settings"]["differing"] == []
    with running_server(
        tmp_path_factory.mktemp("ray-other-settings"),
        database_url=database.url,
        extra_env={**namespace_env, "QRUNTIME_SANDBOX_MAX_PROCESSES": "64"},
        extra_args=ray_server_args(cluster),
    ) as other:

        def compared() -> dict[str, Any]:  # the admin is the first replica's
            return other.health(server.admin_token)["executor"]["agent_settings"]

        wait_until(
            lambda: len(compared()["differing"]) == 2,
            what="the other replica to compare both agents' settings",
            server=other,
        )
        settings = compared()
        assert settings["fingerprint"] != executor(server)["agent_settings"]["fingerprint"]
        assert sorted(agent["address"] for agent in settings["differing"]) == [HEAD_IP, WORKER_IP]
        for agent in settings["differing"]:
            assert agent["settings"] == {
                "sandbox.max_processes": {"agents": 256, "this_replica": 64}
            }, agent
        warning = "sandbox.max_processes: agents 256, this replica 64"
        wait_until(lambda: other.log().count(warning) == 2, what="the warnings", server=other)
        assert "runs jobs with other settings than this replica's" in other.log()
    assert executor(server)["agent_settings"]["differing"] == []
    assert warning not in server.log()


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
        assert done["status"] == "DONE", done["error_message"]
        assert user.get(f"/jobs/{job['id']}/results").json() == {"published": n}
        stored = user.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
        assert [(i["seq"], i["data"]) for i in stored] == [(k + 1, {"i": k}) for k in range(n)]
        events = read_stream(user, job["id"])
        assert interim_seqs(events) == list(range(1, n + 1))
        assert [f["status"] for f in finals(events)] == ["DONE"]


def test_the_agents_store_events_as_their_own_role_which_reaches_nothing_else(
    server: ServerProcess, user: httpx.Client, publisher: str, role: AgentRole
) -> None:
    """The agents connect with QRUNTIME_RAY_AGENT_DATABASE_URL, not the replica's URL; that
    role stores every event of a job, and can read none of the service's other tables."""
    wait_for_cluster(server, 2)
    job = submit(user, publisher, {"n": 3, "delay": 0})
    done = wait_for_job(user, job["id"], server=server)
    assert done["status"] == "DONE", done["error_message"]
    conninfo = make_url(role.url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        agents = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
            (role.name,),
        ).fetchone()
        assert agents is not None and agents[0] >= 1, "no agent connected as its own role"
        for table in ("users", "tokens", "programs", "replicas", "server_secrets"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(f"SELECT * FROM {table} LIMIT 1")


def test_a_job_claimed_by_a_replica_that_died_before_any_agent_started_it_runs_once(
    server: ServerProcess, user: httpx.Client, publisher: str, database: Database
) -> None:
    """The row as a replica SIGKILLed right after its claim leaves it: RUNNING, its lease run
    out, no agent's start recorded. The live replica takes it over and runs it (it ended
    ERROR / INTERRUPTED before, though it had never run); the agent that runs it records its
    start, so no second agent would."""
    wait_for_cluster(server, 2)
    busy = [submit(user, publisher, LONG) for _ in range(2)]
    for running in busy:
        wait_for_job(user, running["id"], ("RUNNING",), server=server)
    job = submit(user, publisher, {"n": 4, "delay": 0})  # no room: not claimed here
    with database.engine.begin() as connection:
        changed = connection.exec_driver_sql(
            "UPDATE jobs SET status = 'RUNNING', owner_replica = 'r-gone', started_at = now(), "
            "lease_expires_at = now() - interval '1 minute' WHERE id = %s AND status = 'QUEUED'",
            (job["id"],),
        )
        assert changed.rowcount == 1
    for running in busy:  # not the orphan, which is RUNNING too
        user.post(f"/jobs/{running['id']}/cancel")
    done = wait_for_job(user, job["id"], server=server)
    assert done["status"] == "DONE", done["error_message"]
    assert interim_seqs(read_stream(user, job["id"])) == [1, 2, 3, 4]
    with database.engine.begin() as connection:
        [(node,)] = connection.exec_driver_sql(
            "SELECT started_on FROM jobs WHERE id = %s", (job["id"],)
        ).fetchall()
    assert node in {n["node_id"] for n in executor(server)["nodes"]}, node


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
    assert cancelled.status_code in (200, 202), cancelled.text  # 202: stopping (under load)
    assert wait_for_job(user, busy[0]["id"], server=server)["reason"] == "CANCELLED BY USER"
    assert wait_for_job(user, waiting["id"], server=server)["status"] == "DONE"
    cancel_all(user)


def test_a_job_two_replicas_claimed_for_one_free_cpu_waits_queued_until_placed(
    server: ServerProcess,
    cluster: RayCluster,
    clients: Clients,
    user: httpx.Client,
    publisher: str,
    database: Database,
    namespace_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """One CPU free; a second replica whose reading of the nodes still shows it free (it
    reads them once a minute here) claims a job after this server's job took that CPU. Ray
    cannot place it yet: it stays QUEUED, saying it waits for Ray to place it, and starts only
    once the CPU is free again (it showed RUNNING before while it waited)."""
    wait_for_cluster(server, 2)
    busy = submit(user, publisher, LONG)
    wait_until(lambda: get_job(user, busy["id"])["interim_count"] >= 1, server=server)
    second_user = clients.user("ray-user-two")
    theirs = upload(second_user, "slow_publisher")["id"]
    with running_server(
        tmp_path_factory.mktemp("ray-second-claimer"),
        database_url=database.url,
        extra_env={
            **namespace_env,
            "QRUNTIME_RAY_WATCH_SECONDS": "60",
            # The first user's jobs are this server's: the other one has one running already.
            "QRUNTIME_MAX_RUNNING_JOBS_PER_USER": "1",
        },
        extra_args=ray_server_args(cluster),
    ) as other:

        def free_there() -> list[float]:
            nodes = other.health(server.admin_token)["executor"]["nodes"]
            return sorted(node["free"].get("CPU", 0.0) for node in nodes)

        wait_until(lambda: free_there() == [0.0, 1.0], what="its reading", server=other)
        first = submit(user, publisher, {"n": 30, "delay": 0.1})
        wait_until(lambda: get_job(user, first["id"])["interim_count"] >= 1, server=server)
        assert free_there() == [0.0, 1.0]  # its reading is older than the first job's place
        token = second_user.headers["Authorization"].removeprefix("Bearer ")
        with other.client(token) as there:
            second = submit(there, theirs, {"n": 5, "delay": 0})

            def held() -> bool:
                waiting = get_job(there, second["id"])
                assert waiting["status"] == "QUEUED", waiting  # not RUNNING while it waits
                return "waiting for Ray to place it" in (waiting["waiting_reason"] or "")

            wait_until(held, what="the other replica to claim it", server=other)
            reason = get_job(second_user, second["id"])["waiting_reason"]  # this server too
            assert reason.startswith("claimed by replica r-"), reason
            done = [
                wait_for_job(user, first["id"], server=server),
                wait_for_job(there, second["id"], server=other),
            ]
            assert [j["status"] for j in done] == ["DONE", "DONE"], done
            assert done[1]["start_date"] >= done[0]["end_date"], done
            assert interim_seqs(read_stream(there, second["id"])) == [1, 2, 3, 4, 5]
    user.post(f"/jobs/{busy['id']}/cancel")
    wait_for_job(user, busy["id"], server=server)


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
    """Two replicas with short leases; the one that runs jobs is SIGKILLed mid-job, with two
    more jobs queued. The running jobs go on on their Ray nodes, the other replica adopts them
    once the lease ran out, and each ends DONE with every interim result stored and streamed
    exactly once; the queued ones run through the survivor."""
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
        # The two nodes' CPUs are taken: these wait QUEUED through the kill.
        queued = [submit(user, publisher, {"n": 5, "delay": 0}) for _ in range(2)]
        assert [get_job(user, j["id"])["status"] for j in queued] == ["QUEUED", "QUEUED"]

        def owners() -> dict[str, int]:
            health = first.health()
            return {r["url"]: r["running_jobs"] for r in health["replicas"]}

        victim = max(replicas, key=lambda r: owners().get(r.url, 0))
        survivor = replicas[1 - replicas.index(victim)]
        assert owners().get(victim.url, 0) >= 1, owners()
        victim.kill()

        follower = stack.enter_context(survivor.client(token))
        for job in jobs:
            done = wait_for_job(follower, job["id"], timeout=180, server=survivor)
            assert done["status"] == "DONE", done["error_message"]
            assert follower.get(f"/jobs/{job['id']}/results").json() == {"published": n}
            body = follower.get(f"/jobs/{job['id']}/interim_results").json()
            stored = [(i["seq"], i["data"]) for i in body["interim_results"]]
            assert stored == [(k + 1, {"i": k}) for k in range(n)]
            events = read_stream(follower, job["id"])
            assert interim_seqs(events) == list(range(1, n + 1))
            assert [f["status"] for f in finals(events)] == ["DONE"]
        for job in queued:
            done = wait_for_job(follower, job["id"], timeout=120, server=survivor)
            assert done["status"] == "DONE", done
            assert interim_seqs(read_stream(follower, job["id"])) == [1, 2, 3, 4, 5]


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
    assert (lost["status"], lost["reason"]) == ("ERROR", "INTERRUPTED"), lost
    assert f"the Ray node {WORKER_IP} (" in lost["error_message"], lost
    assert "was lost (the node died), and the job with it" in lost["error_message"], lost
    kept = user.get(f"/jobs/{on_worker['id']}/interim_results").json()["interim_results"]
    assert [i["seq"] for i in kept] == list(range(1, len(kept) + 1)) and len(kept) >= 3
    cancel_all(user)
    cluster.start_worker()
    wait_for_cluster(server, 2)
    # The lost job's reservation is gone too (Ray would place it again on the head, where
    # it held the CPU for a job that is over).
    wait_until(
        lambda: free_cpus(server) == {HEAD_IP: 1.0, WORKER_IP: 1.0},
        what="both nodes' CPUs free again",
        server=server,
    )


def test_a_node_lost_while_a_job_is_handed_to_it_ends_the_job_naming_the_node(
    server: ServerProcess, cluster: RayCluster, user: httpx.Client, publisher: str
) -> None:
    """The worker's agent hangs (SIGSTOP), so the job Ray placed on the worker is in its
    hand-off (the agent has not taken it) when the node dies: the job ends ERROR /
    INTERRUPTED saying which node died and that the job was lost with it (it ended with
    "internal error: ActorDiedError ..." before)."""
    wait_for_cluster(server, 2)
    pid = wait_until(lambda: agent_pid(server, WORKER_IP), what="the worker's agent")
    assert cluster.worker is not None
    cluster.worker.freeze(pid)
    jobs = [submit(user, publisher, LONG) for _ in range(2)]
    # Both placed (each node's one CPU held by a job's placement group), one runs on the head.
    wait_until(
        lambda: (
            free_cpus(server) == {HEAD_IP: 0.0, WORKER_IP: 0.0}
            and HEAD_IP in {node_of(server, job["id"]) for job in jobs}
        ),
        what="a job running on the head and one placed on the worker",
        server=server,
    )
    [handed] = [job for job in jobs if node_of(server, job["id"]) != HEAD_IP]
    assert get_job(user, handed["id"])["interim_count"] == 0
    cluster.worker.kill()
    lost = wait_for_job(user, handed["id"], server=server)
    assert (lost["status"], lost["reason"]) == ("ERROR", "INTERRUPTED"), lost
    message = lost["error_message"]
    assert f"Ray node {WORKER_IP} (" in message and "was lost" in message, message
    assert "the job with it" in message and "internal error" not in message, message
    cancel_all(user)
    cluster.start_worker()
    wait_for_cluster(server, 2)


def test_a_job_adopted_after_its_node_died_ends_naming_that_node(
    server: ServerProcess,
    cluster: RayCluster,
    user: httpx.Client,
    publisher: str,
    database: Database,
) -> None:
    """The job's replica is gone (its row names another owner, whose lease later runs out:
    this server lets the job go, its agent runs on) and its node dies before anyone adopts
    it. The replica that takes it over ends it ERROR / INTERRUPTED naming the node its agent
    recorded (jobs.started_on); it named only the dead replica before."""
    wait_for_cluster(server, 2)
    wait_until(lambda: agent_pid(server, WORKER_IP), what="the worker's agent")
    worker_id = {node["address"]: node["node_id"] for node in executor(server)["nodes"]}[WORKER_IP]
    jobs = [submit(user, publisher, LONG) for _ in range(2)]
    wait_until(
        lambda: {node_of(server, job["id"]) for job in jobs} == {HEAD_IP, WORKER_IP},
        what="a job on each node",
        server=server,
    )
    [job] = [job for job in jobs if node_of(server, job["id"]) == WORKER_IP]
    wait_until(lambda: get_job(user, job["id"])["interim_count"] >= 3, server=server)

    def set_lease(owner: str, lease: str) -> None:
        with database.engine.begin() as connection:
            connection.exec_driver_sql(
                f"UPDATE jobs SET owner_replica = %s, lease_expires_at = now() {lease} "
                "WHERE id = %s AND status = 'RUNNING'",
                (owner, job["id"]),
            )

    set_lease("r-gone", "+ interval '1 minute'")  # a replica that then dies
    wait_until(
        lambda: f"lost the lease on job {job['id']}" in server.log(),
        what="the server to let the job go",
        server=server,
    )
    assert cluster.worker is not None
    cluster.worker.kill()
    wait_until(lambda: len(executor(server)["nodes"]) == 1, what="the worker gone", server=server)
    assert get_job(user, job["id"])["status"] == "RUNNING"  # nobody followed it there
    set_lease("r-gone", "- interval '1 minute'")  # its lease runs out: it is adopted now
    lost = wait_for_job(user, job["id"], server=server)
    assert (lost["status"], lost["reason"]) == ("ERROR", "INTERRUPTED"), lost
    message = lost["error_message"]
    assert f"the Ray node {WORKER_IP} ({worker_id[:12]})" in message, message
    assert "was lost (the node died), and the job with it" in message, message
    with database.engine.begin() as connection:
        [(started_on,)] = connection.exec_driver_sql(
            "SELECT started_on FROM jobs WHERE id = %s", (job["id"],)
        ).fetchall()
    assert started_on == worker_id
    kept = user.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
    assert [i["seq"] for i in kept] == list(range(1, len(kept) + 1)) and len(kept) >= 3
    cancel_all(user)
    cluster.start_worker()
    wait_for_cluster(server, 2)
    wait_until(
        lambda: free_cpus(server) == {HEAD_IP: 1.0, WORKER_IP: 1.0},
        what="both nodes' CPUs free again",
        server=server,
    )


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
    # A cancel cannot reach the job now: it is recorded and answered, not left hanging.
    asked = time.monotonic()
    cancel = user.post(f"/jobs/{running['id']}/cancel", timeout=45)
    assert cancel.status_code == 202 and cancel.json()["status"] == "RUNNING", cancel.text
    assert time.monotonic() - asked < 40
    queued = [submit(user, publisher, {"n": 3, "delay": 0}) for _ in range(2)]
    # No node can be asked now whether it could ever hold this: accepted, it waits.
    too_big = submit(user, publisher, {"n": 1}, resources={"cpus": 64})
    time.sleep(2.0)
    for job in queued:
        waiting = get_job(user, job["id"])
        assert waiting["status"] == "QUEUED", waiting
        assert "ray executor" in (waiting["waiting_reason"] or ""), waiting

    cluster.start()  # a new head on the same address: it knows nothing of the old one
    wait_for_cluster(server, 2)
    for job in queued:
        done = wait_for_job(user, job["id"], server=server)
        assert done["status"] == "DONE", done["error_message"]
        assert user.get(f"/jobs/{job['id']}/results").json() == {"published": 3}
    orphan = wait_for_job(user, running["id"], server=server)
    assert orphan["status"] == "ERROR" and "agent" in orphan["error_message"], orphan
    # Once the nodes are known, the job no node can hold says why it waits.
    waiting = get_job(user, too_big["id"])
    assert waiting["status"] == "QUEUED", waiting
    assert "64 CPUs (resources.cpus)" in (waiting["waiting_reason"] or ""), waiting
    assert user.post(f"/jobs/{too_big['id']}/cancel").status_code == 200
