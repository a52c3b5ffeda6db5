"""SIGKILL a job's worker process mid-job: the job ends ERROR with a message that says the
worker was killed, what it published first is kept, and the server runs the next job."""

from __future__ import annotations

import os
import signal

import httpx
from fault_support import api_interims, assert_complete

from server_harness import ServerProcess
from server_support import (
    finals,
    get_job,
    interim_seqs,
    job_supervisors,
    read_stream,
    submit,
    upload,
    wait_for_job,
    wait_until,
    worker_pids,
)


def test_a_worker_killed_mid_job_ends_its_job_in_error_and_the_next_job_runs(
    server: ServerProcess, user: httpx.Client
) -> None:
    assert server.process is not None
    publisher = upload(user, "slow_publisher")["id"]
    others = set(worker_pids(*job_supervisors(server)))
    job = submit(user, publisher, {"n": 100_000, "delay": 0.1})
    wait_until(
        lambda: get_job(user, job["id"])["interim_count"] >= 3,
        what="the job to publish 3 interim results",
        server=server,
    )
    wait_until(
        lambda: set(worker_pids(*job_supervisors(server))) - others,
        what="the job's worker process",
        server=server,
    )
    [worker] = set(worker_pids(*job_supervisors(server))) - others

    os.kill(worker, signal.SIGKILL)
    failed = wait_for_job(user, job["id"], server=server)
    assert (failed["status"], failed["reason"]) == ("ERROR", "PROCESS CRASHED"), failed
    assert "killed by signal SIGKILL" in failed["error_message"], failed
    kept = api_interims(user, job["id"])
    assert len(kept) >= 3 and failed["interim_count"] == len(kept)
    assert_complete(kept)
    events = read_stream(user, job["id"])
    assert interim_seqs(events) == [seq for seq, _ in kept]
    assert finals(events) == [
        {"status": "ERROR", "reason": "PROCESS CRASHED", "error_message": failed["error_message"]}
    ]
    results = user.get(f"/jobs/{job['id']}/results")
    assert results.status_code == 409, results.text
    assert "killed by signal SIGKILL" in results.json()["error"]["message"]

    # The server itself is unharmed: the next job runs to the end.
    after = wait_for_job(user, submit(user, publisher, {"n": 2, "delay": 0})["id"], server=server)
    assert after["status"] == "DONE", after
    assert user.get(f"/jobs/{after['id']}/results").json() == {"published": 2}
    assert_complete(api_interims(user, after["id"]), 2)
    assert worker not in worker_pids(*job_supervisors(server))
