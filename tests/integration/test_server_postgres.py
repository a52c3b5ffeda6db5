"""The server on PostgreSQL: upload, run, stream, and a SIGKILL restart on the same database.

Each run gets a throwaway database on the test PostgreSQL server (see storage_support); an
unreachable server fails these tests, it never skips them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storage_support import fresh_database

from server_harness import ServerProcess
from server_support import (
    Clients,
    check_kill_and_restart,
    check_run_and_stream,
    running_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("postgres")
    with (
        fresh_database("postgresql", base) as database,
        running_server(base, database_url=database.url, max_concurrent_jobs=1) as server,
    ):
        yield server


def test_the_server_reports_its_database(clients: Clients) -> None:
    health = clients.admin.get("/health")
    assert health.status_code == 200
    assert health.json()["database"] == "postgresql"


def test_upload_run_and_stream(server: ServerProcess, clients: Clients) -> None:
    check_run_and_stream(server, clients.user("paula"))


def test_a_killed_server_interrupts_its_running_job_and_runs_the_queued_ones(
    server: ServerProcess, clients: Clients
) -> None:
    check_kill_and_restart(server, clients.user("pete"))
