"""One real server per database (SQLite file, then PostgreSQL), shared by every fault test.

The server is session-scoped and parametrised, so pytest runs all fault tests against SQLite,
then all of them against PostgreSQL, starting each server once (a start costs seconds).
Tests that kill it restart it on the same database and port; a test that failed between a
kill and a restart leaves it down, and the next test starts it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from integration.storage_support import fresh_database
from ray_cluster import ray_server_args, ray_server_env
from server_harness import ServerProcess
from server_support import Clients, running_server

#: The local executor on each database, then the Ray executor (on PostgreSQL, as it needs).
BACKINGS = ["sqlite", "postgresql", "ray"]

#: Per-user queue cap well above anything these tests submit (the default is 100).
SERVER_ENV = {"QRUNTIME_MAX_QUEUED_JOBS_PER_USER": "1000"}


@pytest.fixture(scope="session", params=BACKINGS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp(f"faults-{request.param}")
    with ExitStack() as stack:
        url = None
        env, args = dict(SERVER_ENV), []
        if request.param in ("postgresql", "ray"):
            url = stack.enter_context(fresh_database("postgresql", base)).url
        if request.param == "ray":
            args = ray_server_args(request.getfixturevalue("shared_ray_cluster"))
            env |= ray_server_env()
        yield stack.enter_context(
            running_server(
                base, database_url=url, max_concurrent_jobs=2, extra_env=env, extra_args=args
            )
        )


@pytest.fixture(autouse=True)
def server_up(server: ServerProcess) -> Iterator[ServerProcess]:
    """A running server with no job left running by an earlier test.

    Starts the server again if a test killed it and failed before restarting it, and
    cancels what a failed test left queued or running, so one failure does not cascade.
    """
    assert server.process is not None
    if server.process.poll() is not None:
        server.start()
    yield server
    if server.process.poll() is not None:
        return
    with server.client() as admin:
        pending = admin.get("/jobs", params={"pending": "true", "limit": 1000}).json()["jobs"]
        for job in pending:
            admin.post(f"/jobs/{job['id']}/cancel")


@pytest.fixture
def user(clients: Clients) -> httpx.Client:
    """A fresh user per test, so tests that share a server never see each other's jobs."""
    return clients.user(f"f{uuid.uuid4().hex[:10]}")


@pytest.fixture
def user_token(user: httpx.Client) -> str:
    return user.headers["Authorization"].removeprefix("Bearer ")
