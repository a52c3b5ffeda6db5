"""``GET /health`` through a real server on SQLite and PostgreSQL: anyone learns whether the
replica serves and its version, only an admin the details; a database that is down is a 503
that says so, never a 500, and the replica is healthy again once the database is back."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from storage_support import POSTGRES_URL

from security.database_servers import DATABASES, server_on
from server_harness import ServerProcess
from server_support import assert_error, clients_for, wait_until

PUBLIC = {"status", "version"}
DOWN = "the database cannot be reached"  # and nothing more: no host, no driver message
DETAILS = {"database", "sandbox", "executor", "streams", "replica", "replicas"}


@pytest.fixture(scope="module", params=DATABASES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with server_on(request.param, tmp_path_factory, "health") as server:
        yield server


def health(server: ServerProcess, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/health", headers=headers, timeout=30)


def test_only_an_admin_sees_the_details(server: ServerProcess) -> None:
    with clients_for(server) as clients:
        user_token = clients.user("healthy-user").headers["Authorization"].split()[1]
    for token in (None, user_token):
        answer = health(server, token)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "version": answer.json()["version"]}
    details = health(server, server.admin_token).json()
    assert set(details) == PUBLIC | DETAILS, details
    assert details["status"] == "ok" and details["replicas"], details
    assert_error(health(server, "qrt_not-a-token"), 401, "not_authenticated")


def run_sql(statement: str) -> None:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)  # SQLite: a file held open
def test_a_database_that_is_down_is_a_503_not_a_500(server: ServerProcess) -> None:
    assert server.database_url is not None
    name = make_url(server.database_url).database
    run_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    try:
        run_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        for token in (None, server.admin_token):
            error = assert_error(health(server, token), 503, "unavailable")
            assert error == {"code": "unavailable", "message": DOWN, "problems": []}
    finally:
        run_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    wait_until(lambda: health(server).status_code == 200, timeout=30, what="health to come back")
    assert set(health(server, server.admin_token).json()) == PUBLIC | DETAILS
