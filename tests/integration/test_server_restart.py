"""One job slot (``max_concurrent_jobs=1``) on a real server: cancelling a queued job, and a
server killed with SIGKILL and restarted on the same SQLite database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from server_harness import ServerProcess
from server_support import (
    Clients,
    assert_error,
    check_kill_and_restart,
    finals,
    get_job,
    interim_seqs,
    read_stream,
    running_server,
    submit,
    upload,
    wait_for_job,
)

MAX_QUEUED = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"QRUNTIME_MAX_QUEUED_JOBS_PER_USER": str(MAX_QUEUED)}
    with running_server(
        tmp_path_factory.mktemp("restart"), max_concurrent_jobs=1, extra_env=env
    ) as server:
        yield server


def test_a_cancelled_queued_job_never_runs(server: ServerProcess, clients: Clients) -> None:
    quinn = clients.user("quinn")
    sleeper = upload(quinn, "sleeps_forever")["id"]
    hello = upload(quinn, "hello_world")["id"]
    blocker = submit(quinn, sleeper)
    wait_for_job(quinn, blocker["id"], ("RUNNING",), server=server)

    queued = submit(quinn, hello, {"iterations": 1})
    assert get_job(quinn, queued["id"])["status"] == "QUEUED"
    cancelled = quinn.post(f"/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED", cancelled.json()
    assert cancelled.json()["reason"] == "CANCELLED BY USER"
    assert cancelled.json()["start_date"] is None

    # A user's queue is capped; refusals store nothing.
    extra = [submit(quinn, hello, {"iterations": 1}) for _ in range(MAX_QUEUED)]
    total = quinn.get("/jobs").json()["total"]
    over = quinn.post("/jobs", json={"program_id": hello, "inputs": {"iterations": 1}})
    error = assert_error(over, 429, "quota_exceeded")
    assert "queued" in error["message"] and "QRUNTIME_MAX_QUEUED_JOBS_PER_USER" in error["message"]
    assert quinn.get("/jobs").json()["total"] == total
    for job in extra:
        assert quinn.post(f"/jobs/{job['id']}/cancel").json()["status"] == "CANCELLED"

    assert quinn.post(f"/jobs/{blocker['id']}/cancel").json()["status"] == "CANCELLED"
    # The slot is free again; a job queued after the cancelled one runs to the end, so the
    # scheduler has had every chance to start the cancelled one (it is older).
    later = wait_for_job(quinn, submit(quinn, hello, {"iterations": 0})["id"], server=server)
    assert later["status"] == "DONE", later

    after = get_job(quinn, queued["id"])
    assert after == cancelled.json(), "a cancelled job changed afterwards"
    assert after["interim_count"] == 0 and after["start_date"] is None
    assert quinn.get(f"/jobs/{queued['id']}/interim_results").json() == {"interim_results": []}
    assert quinn.get(f"/jobs/{queued['id']}/logs").text == ""
    events = read_stream(quinn, queued["id"])
    assert interim_seqs(events) == []
    assert finals(events) == [
        {
            "status": "CANCELLED",
            "reason": "CANCELLED BY USER",
            "error_message": after["error_message"],
        }
    ]
    again = quinn.post(f"/jobs/{queued['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"


def test_a_killed_server_interrupts_its_running_job_and_runs_the_queued_ones(
    server: ServerProcess, clients: Clients
) -> None:
    rita: httpx.Client = clients.user("rita")
    check_kill_and_restart(server, rita)
