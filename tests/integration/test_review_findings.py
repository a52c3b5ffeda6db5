"""Reproductions of bugs found in review; each test fails while its bug is present."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from server_harness import ServerProcess
from server_support import (
    Clients,
    assert_error,
    clients_for,
    metadata,
    running_server,
    source_b64,
    upload,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"QRUNTIME_STREAM_PING_SECONDS": "1"}
    with running_server(
        tmp_path_factory.mktemp("review"), max_concurrent_jobs=2, extra_env=env
    ) as server:
        yield server


@pytest.fixture
def clients(server: ServerProcess) -> Iterator[Clients]:
    with clients_for(server) as clients:
        yield clients


def _post_raw(client: httpx.Client, path: str, text: str) -> httpx.Response:
    return client.post(path, content=text, headers={"content-type": "application/json"})


# --- SDK: a failed job's traceback is lost ---------------------------------------------------


def test_sdk_result_of_failed_job_carries_the_traceback(
    server: ServerProcess, clients: Clients
) -> None:
    """The server streams ``status: ERROR`` before ``final``; RuntimeJob._apply_event takes the
    status from the first and then ignores the final event, which alone has error_message."""
    from qruntime.client import RuntimeJobFailureError, RuntimeService

    service = RuntimeService(url=server.url, token=server.admin_token)
    program = upload(clients.admin, "raises_key_error")
    job = service.run(program["id"], {})
    with pytest.raises(RuntimeJobFailureError) as info:
        job.result(timeout=90)
    assert "KeyError" in str(info.value), str(info.value)
    assert "KeyError" in (job.error_message() or ""), job.error_message()


# --- input validation: NaN -----------------------------------------------------------------


def test_nan_max_execution_time_is_refused(clients: Clients) -> None:
    """Starlette's json.loads accepts NaN; _time_limit's comparisons are all False for NaN."""
    admin = clients.admin
    program = upload(admin, "hello_world")
    before = admin.get("/jobs", params={"limit": 0}).json()["total"]
    body = f'{{"program_id": "{program["id"]}", "inputs": {{"iterations": 1}}, '
    body += '"max_execution_time": NaN}'
    response = _post_raw(admin, "/jobs", body)
    assert_error(response, 400, "bad_request")
    assert admin.get("/jobs", params={"limit": 0}).json()["total"] == before


def test_nan_inputs_are_refused_and_never_break_listing(clients: Clients) -> None:
    user = clients.user("nan-inputs-user")
    program = upload(user, "sleeps_forever")  # spec.parameters accepts any object
    body = f'{{"program_id": "{program["id"]}", "inputs": {{"seconds": NaN}}}}'
    response = _post_raw(user, "/jobs", body)
    listing = user.get("/jobs")
    assert listing.status_code == 200, listing.text
    assert response.status_code == 400, response.text


# --- metadata.version is not length-checked (column is String(64)) -------------------------


def test_overlong_version_is_refused_on_sqlite(clients: Clients) -> None:
    """SQLite ignores VARCHAR(64) and stores it; PostgreSQL raises (see the next test)."""
    admin = clients.admin
    before = admin.get("/programs", params={"limit": 0}).json()["total"]
    response = admin.post(
        "/programs",
        json={
            "data": source_b64("hello_world"),
            "metadata": metadata("hello_world", version="1" * 100),
        },
    )
    assert_error(response, 400, "invalid_metadata")
    assert admin.get("/programs", params={"limit": 0}).json()["total"] == before


def test_overlong_version_is_400_not_500_on_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from storage_support import fresh_database

    base = tmp_path_factory.mktemp("pgversion")
    with (
        fresh_database("postgresql", base) as database,
        running_server(base, database_url=database.url, max_concurrent_jobs=1) as server,
        clients_for(server) as clients,
    ):
        admin = clients.admin
        response = admin.post(
            "/programs",
            json={
                "data": source_b64("hello_world"),
                "metadata": metadata("hello_world", version="1" * 100),
            },
        )
        assert_error(response, 400, "invalid_metadata")
        program = upload(admin, "hello_world")
        patched = admin.patch(f"/programs/{program['id']}", json={"version": "2" * 100})
        assert_error(patched, 400, "invalid_metadata")
