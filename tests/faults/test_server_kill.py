"""SIGKILL the server with 20 jobs queued or running, then restart it on the same database:
no job and no stored interim result is lost, and clients that were streaming get the rest of
each stream and a final event after reconnecting, with nothing twice."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fault_support import (
    RECONNECT_GIVE_UP,
    RawStreamReader,
    api_interims,
    assert_complete,
    snapshot_jobs,
)

from qruntime.client.stream import JobEventStream, StreamFollower, StreamOptions
from qruntime.client.transport import ApiClient
from server_harness import ServerProcess
from server_support import get_job, submit, upload, wait_for_job, wait_until, worker_pids

JOBS = 20
#: Publishes far longer than the test: it is running when the server dies.
LONG = {"n": 100_000, "delay": 0.1}
#: Quick to run once a slot is free.
SHORT = {"n": 3, "delay": 0.05}
SHORT_RESULT = {"published": 3}


class SdkFollower:
    """The SDK's own stream follower (reconnects with Last-Event-ID, drops repeats)."""

    def __init__(self, server: ServerProcess, token: str, job_id: str):
        self.received: list[tuple[int, Any]] = []
        self.statuses: list[str] = []
        self.api = ApiClient(server.url, token)
        options = StreamOptions(read_timeout=60, max_delay=1.0, give_up_after=RECONNECT_GIVE_UP)
        stream = JobEventStream(self.api, job_id, options=options)
        self.follower = StreamFollower(
            stream,
            on_interim=lambda seq, data: self.received.append((seq, data)),
            on_status=lambda message: self.statuses.append(message.status),
        ).start()


def test_sigkill_with_twenty_jobs_queued_or_running_loses_nothing(
    server: ServerProcess, user: httpx.Client, user_token: str
) -> None:
    if "ray" in server.extra_args:
        pytest.skip(
            "with the Ray executor a killed server's jobs run on and are adopted, not "
            "interrupted: test_ray_executor.py::test_jobs_of_a_sigkilled_replica_are_adopted..."
        )
    publisher = upload(user, "slow_publisher")["id"]
    # max_concurrent_jobs=2: the two long jobs take both slots; the others wait behind them.
    long_jobs = [submit(user, publisher, LONG)["id"] for _ in range(2)]
    for job_id in long_jobs:
        wait_until(
            lambda job_id=job_id: get_job(user, job_id)["interim_count"] >= 3,
            what=f"job {job_id} to publish 3 interim results",
            server=server,
        )
    short_jobs = [submit(user, publisher, SHORT)["id"] for _ in range(JOBS - 2)]
    all_jobs = long_jobs + short_jobs
    listed = user.get("/jobs", params={"limit": 100}).json()
    assert listed["total"] == JOBS
    states = {job["id"]: job["status"] for job in listed["jobs"]}
    assert states == {job_id: "RUNNING" for job_id in long_jobs} | {
        job_id: "QUEUED" for job_id in short_jobs
    }

    # Clients streaming at the time of the crash: mid-stream on both running jobs, waiting on
    # two queued ones; one of each through the SDK, the other with raw SSE.
    sdk = {job_id: SdkFollower(server, user_token, job_id) for job_id in long_jobs[:1]}
    sdk |= {job_id: SdkFollower(server, user_token, job_id) for job_id in short_jobs[:1]}
    raw = {
        job_id: RawStreamReader(server.url, user_token, job_id).start()
        for job_id in (long_jobs[1], short_jobs[1])
    }
    # Every client is connected, and those on the running jobs are past two interim results.
    wait_until(lambda: sdk[long_jobs[0]].follower.last_seq >= 2, what="the SDK follower")
    wait_until(lambda: sdk[short_jobs[0]].statuses == ["QUEUED"], what="the SDK follower")
    wait_until(lambda: len(raw[long_jobs[1]].interims()) >= 2, what="the raw reader")
    wait_until(lambda: raw[short_jobs[1]].events, what="the raw reader")
    assert [e.event for e in raw[short_jobs[1]].events] == ["status"]
    assert server.process is not None
    server_pid = server.process.pid
    assert len(worker_pids(server_pid)) == 2, server.log()

    server.kill()
    wait_until(lambda: not worker_pids(server_pid), timeout=15, what="workers to die")
    at_kill = snapshot_jobs(server, all_jobs)
    for job_id in long_jobs:
        assert at_kill[job_id].status == "RUNNING", at_kill[job_id]
        assert len(at_kill[job_id].interims) >= 3
        assert_complete(at_kill[job_id].interims)
    for job_id in short_jobs:
        assert (at_kill[job_id].status, at_kill[job_id].interims) == ("QUEUED", []), job_id

    server.start()
    assert server.process.pid != server_pid

    # Nothing lost: every job is still there and reaches a final state.
    listed = user.get("/jobs", params={"limit": 100}).json()
    assert sorted(job["id"] for job in listed["jobs"]) == sorted(all_jobs)
    for job_id in long_jobs:
        job = get_job(user, job_id)
        assert (job["status"], job["reason"]) == ("ERROR", "INTERRUPTED"), job
        assert "server stopped" in job["error_message"], job
        assert job["interim_count"] == len(at_kill[job_id].interims), job
        assert api_interims(user, job_id) == at_kill[job_id].interims
    for job_id in short_jobs:
        job = wait_for_job(user, job_id, server=server)
        assert job["status"] == "DONE", job
        assert user.get(f"/jobs/{job_id}/results").json() == SHORT_RESULT
        assert_complete(api_interims(user, job_id), SHORT["n"])
    # The interrupted jobs did not gain or lose anything once their successors ran.
    for job_id in long_jobs:
        assert api_interims(user, job_id) == at_kill[job_id].interims
        assert get_job(user, job_id)["status"] == "ERROR"

    # Every streaming client reconnected and got the rest, then the final event.
    for job_id, client in sdk.items():
        assert client.follower.wait(RECONNECT_GIVE_UP), f"SDK stream of {job_id} did not end"
        client.api.close()
        assert client.follower.error is None, client.follower.error
        final = client.follower.final
        assert final is not None
        assert client.received == api_interims(user, job_id)
        job = get_job(user, job_id)
        assert (final.status, final.reason, final.error_message) == (
            job["status"],
            job["reason"],
            job["error_message"],
        )
    for job_id, reader in raw.items():
        assert reader.done.wait(RECONNECT_GIVE_UP), f"raw stream of {job_id} did not end"
        assert reader.error is None, reader.error
        assert reader.connections >= 2, reader.drops  # it really was cut off and came back
        assert reader.interims() == api_interims(user, job_id)  # no repeats, no gaps
        job = get_job(user, job_id)
        expected = {
            "status": job["status"],
            "reason": job["reason"],
            "error_message": job["error_message"],
        }
        if job["status"] == "DONE":  # a small result rides on the final event
            expected["result"] = user.get(f"/jobs/{job_id}/results").text
        assert reader.final == expected
    assert sdk[long_jobs[0]].follower.final.reason == "INTERRUPTED"
    assert sdk[short_jobs[0]].follower.final.status == "DONE"
    assert raw[long_jobs[1]].final["reason"] == "INTERRUPTED"
    assert raw[short_jobs[1]].final["status"] == "DONE"
