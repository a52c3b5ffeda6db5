"""What one user keeps stored is bounded, and old jobs go after the retention time, through a
real server on SQLite, PostgreSQL and Ray.

The server has a small budget (QRUNTIME_MAX_STORED_BYTES_PER_USER) and a retention time of a
few seconds (QRUNTIME_JOB_RETENTION_DAYS), so both are seen at work within one test run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from security.database_servers import BACKINGS, server_on
from server_harness import ServerProcess
from server_support import (
    assert_error,
    b64,
    clients_for,
    counts,
    get_job,
    upload,
    wait_for_job,
    wait_until,
)

BUDGET = 300_000
PAD = 100_000
RETENTION_SECONDS = 6.0


@pytest.fixture(scope="module", params=BACKINGS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "QRUNTIME_MAX_STORED_BYTES_PER_USER": str(BUDGET),
        "QRUNTIME_JOB_RETENTION_DAYS": str(RETENTION_SECONDS / 86400),
    }
    with server_on(
        request.param, tmp_path_factory, "budget", request=request, extra_env=env
    ) as server:
        yield server


@pytest.fixture
def user(server: ServerProcess) -> Iterator[httpx.Client]:
    with clients_for(server) as clients:
        yield clients.user(f"u{uuid.uuid4().hex[:8]}")


def test_a_submit_past_the_budget_is_refused_naming_it_and_stores_nothing(server, user):
    program = upload(user, "returns_text", name="returns-text")["id"]
    accepted = []
    for _ in range(2):  # 2 x 100 kB of inputs fit in 300 kB
        response = user.post("/jobs", json={"program_id": program, "inputs": {"pad": "x" * PAD}})
        assert response.status_code == 201, response.text
        accepted.append(response.json()["id"])
    with clients_for(server) as clients:
        before = counts(clients.admin)
        refused = user.post("/jobs", json={"program_id": program, "inputs": {"pad": "x" * PAD}})
        error = assert_error(refused, 429, "quota_exceeded")
        assert "QRUNTIME_MAX_STORED_BYTES_PER_USER" in error["message"], error
        assert f"budget of {BUDGET} bytes" in error["message"], error
        assert counts(clients.admin) == before
        other = clients.user(f"o{uuid.uuid4().hex[:8]}")  # the budget is per user
        mine = upload(other, "returns_text", name="returns-text")["id"]
        assert other.post("/jobs", json={"program_id": mine, "inputs": {}}).status_code == 201
    for job_id in accepted:
        wait_for_job(user, job_id, server=server)
    assert user.delete(f"/jobs/{accepted[0]}").status_code == 204  # deleting frees room
    again = user.post("/jobs", json={"program_id": program, "inputs": {"pad": "x" * PAD}})
    assert again.status_code == 201, again.text


def test_an_upload_past_the_budget_is_refused(server, user):
    program = upload(user, "returns_text", name="returns-text")["id"]
    big_inputs = {"pad": "x" * (BUDGET - 10_000)}
    assert user.post("/jobs", json={"program_id": program, "inputs": big_inputs}).status_code == 201
    source = "def main(backend, user_messenger):\n    return 1\n" + "# padding\n" * 2_000
    refused = user.put(f"/programs/{program}/data", json={"data": b64(source)})
    error = assert_error(refused, 429, "quota_exceeded")
    assert "QRUNTIME_MAX_STORED_BYTES_PER_USER" in error["message"], error


def test_finished_jobs_are_deleted_after_the_retention_time(server, user):
    program = upload(user, "returns_text", name="returns-text")["id"]
    job = user.post("/jobs", json={"program_id": program, "inputs": {}}).json()
    wait_for_job(user, job["id"], server=server)
    assert get_job(user, job["id"])["status"] == "DONE"

    wait_until(
        lambda: user.get(f"/jobs/{job['id']}").status_code == 404,
        timeout=60,
        what="the job to be deleted after the retention time",
        server=server,
    )
    assert user.get(f"/jobs/{job['id']}/results").status_code == 404
    assert user.get(f"/programs/{program}").status_code == 200  # programs are kept
