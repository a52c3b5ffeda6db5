"""A client that hangs up and reconnects 100 times while one job runs gets every interim
result exactly once and in order, then the final event."""

from __future__ import annotations

from typing import Any

import httpx
from fault_support import api_interims, assert_complete
from httpx_sse import connect_sse

from server_harness import ServerProcess
from server_support import get_job, submit, upload, wait_until

RECONNECTS = 100


def open_stream(last_seq: int, style: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Resume after ``last_seq`` in one of three ways a client might."""
    if style == 0:
        return {"since": last_seq}, {}
    if style == 1:
        return {}, {"Last-Event-ID": str(last_seq)}
    # A stale ?since= next to the header: Last-Event-ID wins.
    return {"since": 0}, {"Last-Event-ID": str(last_seq)}


def test_a_hundred_reconnects_during_one_job_lose_and_repeat_nothing(
    server: ServerProcess, user: httpx.Client
) -> None:
    publisher = upload(user, "slow_publisher")["id"]
    # Runs until the test cancels it, so all reconnects happen while the job is RUNNING.
    job = submit(user, publisher, {"n": 100_000, "delay": 0.05})
    wait_until(
        lambda: get_job(user, job["id"])["status"] == "RUNNING",
        what="the job to start",
        server=server,
    )

    received: list[tuple[int, Any]] = []
    opened_while_running = 0
    connection = 0
    while opened_while_running < RECONNECTS:
        connection += 1
        # Hang up at different points: right after the opening status event, after 1 or
        # after 2 new interim results.
        wanted = connection % 3
        last_seq = received[-1][0] if received else 0
        params, headers = open_stream(last_seq, style=(connection // 3) % 3)
        new = 0
        with connect_sse(
            user, "GET", f"/jobs/{job['id']}/stream", params=params, headers=headers
        ) as source:
            assert source.response.status_code == 200, source.response.read()
            for event in source.iter_sse():
                assert event.event != "final", "the job ended before the test cancelled it"
                if event.event == "status":
                    assert event.json()["status"] == "RUNNING", event.data
                    opened_while_running += 1
                    if wanted == 0:
                        break
                elif event.event == "interim":
                    payload = event.json()
                    assert event.id == str(payload["seq"])
                    received.append((payload["seq"], payload["data"]))
                    new += 1
                    if new == wanted:
                        break
    assert_complete(received)  # so far: 1..n in order, none twice, none skipped

    cancelled = user.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"

    # The last reconnect gets the rest and the final event, then the server ends the stream.
    with connect_sse(
        user,
        "GET",
        f"/jobs/{job['id']}/stream",
        headers={"Last-Event-ID": str(received[-1][0])},
    ) as source:
        tail = list(source.iter_sse())
    interims = [(e.json()["seq"], e.json()["data"]) for e in tail if e.event == "interim"]
    assert [e.event for e in tail] == ["interim"] * len(interims) + ["final"]
    assert tail[-1].json() == {
        "status": "CANCELLED",
        "reason": "CANCELLED BY USER",
        "error_message": cancelled.json()["error_message"],
    }
    received += interims
    assert_complete(received)
    assert received == api_interims(user, job["id"])
    assert connection >= RECONNECTS
