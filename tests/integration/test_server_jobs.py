"""Jobs and their event streams against a real server: results, interim results, logs,
listing filters, cancel, delete, time limits, failures, and SSE replay and resume."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from qruntime import RuntimeService
from qruntime.service.job_stream import INLINE_RESULT_MAX_BYTES
from server_harness import ServerProcess
from server_support import (
    Clients,
    assert_error,
    finals,
    get_job,
    interim_seqs,
    metadata,
    read_stream,
    running_server,
    submit,
    upload,
    wait_for_job,
    wait_until,
)

MAX_LOG_BYTES = 4096
PING_SECONDS = 1.0
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
JOB_KEYS = {
    "id",
    "program_id",
    "program_name",
    "owner",
    "backend",
    "status",
    "reason",
    "error_message",
    "inputs",
    "max_execution_time",
    "creation_date",
    "start_date",
    "end_date",
    "interim_count",
    "resources",
    "waiting_reason",
    "session_id",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "QRUNTIME_MAX_LOG_BYTES": str(MAX_LOG_BYTES),
        "QRUNTIME_STREAM_PING_SECONDS": str(PING_SECONDS),
    }
    with running_server(
        tmp_path_factory.mktemp("jobs"), max_concurrent_jobs=2, extra_env=env
    ) as server:
        yield server


@pytest.fixture(scope="module")
def carol(clients: Clients) -> httpx.Client:
    return clients.user("carol")


@pytest.fixture(scope="module")
def programs(carol: httpx.Client) -> dict[str, str]:
    """carol's programs by role, uploaded once."""
    return {
        "hello": upload(carol, "hello_world")["id"],
        "failing": upload(carol, "raises_key_error")["id"],
        "sleeper": upload(carol, "sleeps_forever")["id"],
        "short": upload(carol, "sleeps_forever", name="sleeps-briefly", max_execution_time=2)["id"],
        "publisher": upload(carol, "slow_publisher")["id"],
        "chatty": upload(carol, "chatty")["id"],
    }


@pytest.fixture(scope="module")
def finished(server: ServerProcess, carol: httpx.Client, programs: dict[str, str]) -> dict:
    """A DONE hello-world job with 3 interim results and an ERROR job, run side by side."""
    hello = submit(carol, programs["hello"], {"iterations": 3})
    failing = submit(carol, programs["failing"])
    return {
        "hello": wait_for_job(carol, hello["id"], server=server),
        "failing": wait_for_job(carol, failing["id"], server=server),
    }


# --- results, interim results, logs ----------------------------------------------------------


def test_a_hello_world_job_runs_to_done(
    carol: httpx.Client, programs: dict, finished: dict
) -> None:
    job = finished["hello"]
    assert set(job) == JOB_KEYS
    assert job["status"] == "DONE", job
    assert job["reason"] is None and job["error_message"] is None
    assert job["session_id"] is None, "a job run outside a session belongs to none"
    assert job["program_id"] == programs["hello"] and job["program_name"] == "hello-world"
    assert job["owner"] == "carol" and job["backend"] == "aer_simulator"
    assert job["inputs"] == {"iterations": 3}
    assert job["max_execution_time"] == 300
    assert job["interim_count"] == 3
    assert job["id"].startswith("j-")
    for key in ("creation_date", "start_date", "end_date"):
        assert ISO_Z.match(job[key]), (key, job)
    assert job["creation_date"] <= job["start_date"] <= job["end_date"]

    results = carol.get(f"/jobs/{job['id']}/results")
    assert results.status_code == 200, results.text
    assert results.headers["content-type"].startswith("application/json")
    assert results.json() == "All done!"

    interims = carol.get(f"/jobs/{job['id']}/interim_results")
    assert interims.status_code == 200, interims.text
    items = interims.json()["interim_results"]
    assert [i["seq"] for i in items] == [1, 2, 3]
    for n, item in enumerate(items):
        assert set(item) == {"seq", "data", "creation_date"}
        assert item["data"]["iteration"] == n
        assert isinstance(item["data"]["counts"], dict) and item["data"]["counts"]
        assert ISO_Z.match(item["creation_date"])
    since = carol.get(f"/jobs/{job['id']}/interim_results", params={"since": 1}).json()
    assert since["interim_results"] == items[1:]
    assert carol.get(f"/jobs/{job['id']}/interim_results?since=3").json() == {"interim_results": []}

    logs = carol.get(f"/jobs/{job['id']}/logs")
    assert logs.status_code == 200
    assert logs.headers["content-type"].startswith("text/plain")


def test_a_failing_program_ends_in_error_with_its_traceback(
    carol: httpx.Client, finished: dict
) -> None:
    job = finished["failing"]
    assert job["status"] == "ERROR", job
    assert job["reason"] == "PROGRAM FAILED", job
    message = job["error_message"]
    assert "Traceback" in message and "KeyError" in message, message
    assert "optimization_level" in message, message
    assert job["end_date"] is not None

    error = assert_error(carol.get(f"/jobs/{job['id']}/results"), 409, "invalid_state")
    assert "ERROR" in error["message"] or "failed" in error["message"], error
    assert "KeyError" in error["message"], error

    interims = carol.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
    assert [(i["seq"], i["data"]) for i in interims] == [(1, {"step": "about to fail"})]
    error = assert_error(carol.post(f"/jobs/{job['id']}/cancel"), 409, "invalid_state")
    assert "finished" in error["message"], error


def test_a_job_over_its_time_limit_is_cancelled(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    by_program = submit(carol, programs["short"])
    assert by_program["max_execution_time"] == 2
    by_job = submit(carol, programs["sleeper"], max_execution_time=1)
    assert by_job["max_execution_time"] == 1
    for job in (by_program, by_job):
        ended = wait_for_job(carol, job["id"], server=server)
        assert ended["status"] == "CANCELLED", ended
        assert ended["reason"] == "RAN TOO LONG", ended
        assert "max_execution_time" in (ended["error_message"] or ""), ended
        assert_error(carol.get(f"/jobs/{job['id']}/results"), 409, "invalid_state")
        assert "going to sleep" in carol.get(f"/jobs/{job['id']}/logs").text


def test_a_jobs_resources_default_to_its_programs_field_by_field(
    server: ServerProcess, carol: httpx.Client
) -> None:
    """The program's spec.resources is what its jobs reserve; what a job asks for replaces
    the program's value of that resource only, less than it too (a job asking for 1 CPU, the
    default of defaults, got the program's 2 before)."""
    spec = {**metadata("hello_world")["spec"], "resources": {"cpus": 2, "memory_bytes": 2**30}}
    program = upload(carol, "hello_world", name="hello-with-resources", spec=spec)["id"]
    plain = submit(carol, program, {"iterations": 1})
    asked = submit(carol, program, {"iterations": 1}, resources={"gpus": 1, "cpus": 3})
    fewer = submit(carol, program, {"iterations": 1}, resources={"cpus": 1, "memory_bytes": 0})
    assert plain["resources"] == {"cpus": 2.0, "memory_bytes": 2**30, "gpus": 0.0}, plain
    assert asked["resources"] == {"cpus": 3.0, "memory_bytes": 2**30, "gpus": 1.0}, asked
    assert fewer["resources"] == {"cpus": 1.0, "memory_bytes": 0, "gpus": 0.0}, fewer
    for job in (plain, asked, fewer):  # the local executor reserves nothing: all run
        ended = wait_for_job(carol, job["id"], server=server)
        assert ended["status"] == "DONE" and ended["resources"] == job["resources"], ended


def test_cancel_and_delete_follow_the_job_state(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    job = submit(carol, programs["sleeper"])
    jid = job["id"]
    wait_for_job(carol, jid, ("RUNNING",), server=server)
    wait_until(
        lambda: "going to sleep" in carol.get(f"/jobs/{jid}/logs").text,
        what="the program to start",
        server=server,
    )

    error = assert_error(carol.delete(f"/jobs/{jid}"), 409, "invalid_state")
    assert "RUNNING" in error["message"], error
    assert_error(carol.get(f"/jobs/{jid}/results"), 409, "invalid_state")

    cancelled = carol.post(f"/jobs/{jid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert set(cancelled.json()) == JOB_KEYS
    assert cancelled.json()["status"] == "CANCELLED", cancelled.json()
    assert cancelled.json()["reason"] == "CANCELLED BY USER"
    assert cancelled.json()["end_date"] is not None
    assert get_job(carol, jid) == cancelled.json()

    assert_error(carol.post(f"/jobs/{jid}/cancel"), 409, "invalid_state")
    deleted = carol.delete(f"/jobs/{jid}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    for path in ("", "/results", "/interim_results", "/logs", "/stream"):
        assert_error(carol.get(f"/jobs/{jid}{path}"), 404, "not_found")
    assert_error(carol.delete(f"/jobs/{jid}"), 404, "not_found")
    assert jid not in {j["id"] for j in carol.get("/jobs", params={"limit": 1000}).json()["jobs"]}


def test_logs_are_capped_per_job_and_say_so(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    job = wait_for_job(carol, submit(carol, programs["chatty"], {"lines": 1000})["id"])
    assert job["status"] == "DONE", job
    assert carol.get(f"/jobs/{job['id']}/results").json() == 1000
    logs = carol.get(f"/jobs/{job['id']}/logs")
    assert logs.status_code == 200
    assert logs.headers["content-type"].startswith("text/plain")
    lines = logs.text.splitlines()
    assert lines[0].startswith("[qruntime: earlier output was dropped"), lines[0]
    assert "QRUNTIME_MAX_LOG_BYTES" in lines[0]
    assert "line 00999 " + "x" * 40 in lines, lines[-5:]  # the newest output is kept
    assert "chatty starts" not in lines and "line 00000 " + "x" * 40 not in lines
    numbers = [int(line.split()[1]) for line in lines[1:] if line.startswith("line ")]
    assert numbers == list(range(numbers[0], 1000)), "kept lines are the newest, in order"
    kept = "\n".join(lines[1:])
    assert len(kept.encode()) <= MAX_LOG_BYTES + len(lines), len(kept)


def test_jobs_are_listed_newest_first_with_filters(server: ServerProcess, clients: Clients) -> None:
    dan = clients.user("dan")
    hello = upload(dan, "hello_world")["id"]
    failing = upload(dan, "raises_key_error")["id"]
    sleeper = upload(dan, "sleeps_forever")["id"]
    submitted = [
        submit(dan, hello, {"iterations": 0}),
        submit(dan, failing),
        submit(dan, hello, {"iterations": 1}),
    ]
    for job in submitted:
        wait_for_job(dan, job["id"], server=server)
    running = submit(dan, sleeper)
    wait_for_job(dan, running["id"], ("RUNNING",), server=server)
    newest_first = [running["id"], *reversed([j["id"] for j in submitted])]

    def ids(**params: object) -> tuple[list[str], int]:
        response = dan.get("/jobs", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"jobs", "total"}
        return [j["id"] for j in body["jobs"]], body["total"]

    try:
        assert ids() == (newest_first, 4)
        default = dan.get("/jobs").json()
        assert default["total"] == 4 and len(default["jobs"]) == 4
        assert ids(pending="true") == ([running["id"]], 1)
        assert ids(pending="false") == (newest_first[1:], 3)
        assert ids(program_id=hello) == ([submitted[2]["id"], submitted[0]["id"]], 2)
        assert ids(program_id=failing) == ([submitted[1]["id"]], 1)
        assert ids(status="DONE") == ([submitted[2]["id"], submitted[0]["id"]], 2)
        assert ids(status=["DONE", "ERROR"]) == (newest_first[1:], 3)
        assert ids(status="RUNNING") == ([running["id"]], 1)
        assert ids(status="DONE", pending="true") == ([], 0)
        assert ids(status="CANCELLED") == ([], 0)
        assert ids(program_id="no-such-program") == ([], 0)
        assert ids(limit=2) == (newest_first[:2], 4)
        assert ids(limit=2, offset=1) == (newest_first[1:3], 4)
        assert ids(limit=2, offset=4) == ([], 4)
        assert ids(limit=0) == ([], 4)
        assert_error(dan.get("/jobs", params={"status": "SLEEPING"}), 422, "bad_request")

        # A finished (DONE) job can be deleted; it then leaves the listings.
        oldest = submitted[0]["id"]
        assert dan.get(f"/jobs/{oldest}/results").json() == "All done!"
        deleted = dan.delete(f"/jobs/{oldest}")
        assert deleted.status_code == 204, deleted.text
        assert_error(dan.get(f"/jobs/{oldest}"), 404, "not_found")
        assert ids() == (newest_first[:3], 3)
    finally:
        assert dan.post(f"/jobs/{running['id']}/cancel").json()["status"] == "CANCELLED"


# --- streams ---------------------------------------------------------------------------------


def done_with(result: object) -> dict:
    """The final event of a DONE job whose (small) result rides on it."""
    return {"status": "DONE", "reason": None, "error_message": None, "result": json.dumps(result)}


DONE_HELLO = done_with("All done!")


def test_a_finished_jobs_stream_replays_its_interims_then_final(
    carol: httpx.Client, finished: dict
) -> None:
    jid = finished["hello"]["id"]
    stored = carol.get(f"/jobs/{jid}/interim_results").json()["interim_results"]
    events = read_stream(carol, jid)
    # The terminal status comes only with ``final``, after the last interim.
    assert [e.event for e in events] == ["interim", "interim", "interim", "final"]
    assert interim_seqs(events) == [1, 2, 3]
    assert [e.json()["data"] for e in events if e.event == "interim"] == [i["data"] for i in stored]
    result = carol.get(f"/jobs/{jid}/results").text
    assert events[-1].json() == {
        "status": "DONE",
        "reason": None,
        "error_message": None,
        "result": result,  # small: it rides on the final event
    }
    assert json.loads(result) == "All done!"

    with carol.stream("GET", f"/jobs/{jid}/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        response.read()


@pytest.mark.parametrize("size", [10, INLINE_RESULT_MAX_BYTES + 1])
def test_the_sdk_gets_small_results_from_the_final_event_and_large_ones_by_request(
    server: ServerProcess, carol: httpx.Client, size: int
) -> None:
    program = upload(carol, "returns_text", name=f"returns-text-{size}")["id"]
    job = wait_for_job(carol, submit(carol, program, {"size": size})["id"], server=server)
    [final] = finals(read_stream(carol, job["id"]))
    stored = carol.get(f"/jobs/{job['id']}/results").text
    inline = len(stored) <= INLINE_RESULT_MAX_BYTES
    assert inline is (size == 10)
    expected = done_with("x" * size)
    if not inline:
        del expected["result"]  # too large: fetched with GET /results
    assert final == expected
    token = carol.headers["Authorization"].removeprefix("Bearer ")
    with RuntimeService(server.url, token) as service:
        assert service.job(job["id"]).result(timeout=30) == "x" * size


def test_a_failed_jobs_stream_ends_with_its_error(carol: httpx.Client, finished: dict) -> None:
    events = read_stream(carol, finished["failing"]["id"])
    assert interim_seqs(events) == [1]
    [final] = finals(events)
    assert final["status"] == "ERROR" and final["reason"] == "PROGRAM FAILED"
    assert "KeyError" in final["error_message"], final
    assert events[-1].event == "final"


@pytest.mark.parametrize(
    ("headers", "params", "expected"),
    [
        ({}, {"since": 1}, [2, 3]),
        ({}, {"since": 3}, []),
        ({}, {"since": 99}, []),
        ({"Last-Event-ID": "1"}, None, [2, 3]),
        ({"Last-Event-ID": "2"}, None, [3]),
        ({"Last-Event-ID": "3"}, None, []),
        ({"Last-Event-ID": "2"}, {"since": 0}, [3]),
        ({"Last-Event-ID": "0"}, {"since": 2}, [1, 2, 3]),
    ],
)
def test_a_stream_resumes_after_the_given_sequence_number(
    carol: httpx.Client, finished: dict, headers: dict, params: dict | None, expected: list[int]
) -> None:
    events = read_stream(carol, finished["hello"]["id"], headers=headers, params=params)
    assert interim_seqs(events) == expected
    assert events[-1].event == "final"
    assert finals(events) == [DONE_HELLO]


def test_bad_resume_points_and_unknown_jobs_are_json_errors(
    carol: httpx.Client, finished: dict
) -> None:
    jid = finished["hello"]["id"]
    error = assert_error(
        carol.get(f"/jobs/{jid}/stream", headers={"Last-Event-ID": "abc"}), 400, "bad_request"
    )
    assert "Last-Event-ID" in error["message"], error
    assert_error(carol.get(f"/jobs/{jid}/stream", params={"since": -1}), 422, "bad_request")
    error = assert_error(carol.get("/jobs/j-does-not-exist/stream"), 404, "not_found")
    assert "j-does-not-exist" in error["message"]


def test_a_live_stream_cut_mid_job_resumes_with_nothing_lost_or_repeated(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    n, cut = 10, 3
    job = submit(carol, programs["publisher"], {"n": n, "delay": 0.3})
    first = read_stream(carol, job["id"], stop_after_interims=cut)
    first_seqs = interim_seqs(first)
    assert first_seqs == list(range(1, cut + 1)), [(e.event, e.data) for e in first]
    assert not finals(first)
    statuses = [e.json()["status"] for e in first if e.event == "status"]
    assert statuses and set(statuses) <= {"QUEUED", "RUNNING"}, statuses

    # The job is still publishing: the rest comes from a resumed stream.
    rest = read_stream(carol, job["id"], headers={"Last-Event-ID": str(first_seqs[-1])})
    assert rest[0].event == "status"
    assert rest[0].json()["status"] == "RUNNING", (
        "the job finished before the stream was resumed; the test proves nothing",
        [(e.event, e.data) for e in rest],
    )
    rest_seqs = interim_seqs(rest)
    assert first_seqs + rest_seqs == list(range(1, n + 1)), (first_seqs, rest_seqs)
    assert [e.json()["data"] for e in first + rest if e.event == "interim"] == [
        {"i": k} for k in range(n)
    ]
    assert rest[-1].event == "final"
    assert finals(rest) == [done_with({"published": n})]
    assert [e.json()["status"] for e in rest if e.event == "status"] == ["RUNNING"]

    done = get_job(carol, job["id"])
    assert done["status"] == "DONE" and done["interim_count"] == n
    assert carol.get(f"/jobs/{job['id']}/results").json() == {"published": n}
    stored = carol.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
    assert [(i["seq"], i["data"]) for i in stored] == [(k + 1, {"i": k}) for k in range(n)]


def test_a_stream_opened_before_the_job_starts_follows_it_to_the_end(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    job = submit(carol, programs["publisher"], {"n": 4, "delay": 0.1})
    events = read_stream(carol, job["id"])
    assert interim_seqs(events) == [1, 2, 3, 4]
    statuses = [e.json()["status"] for e in events if e.event == "status"]
    assert statuses[-1] == "RUNNING" and statuses == sorted(
        statuses, key=["QUEUED", "RUNNING"].index
    ), statuses
    assert len(statuses) == len(set(statuses)), statuses
    assert events[-1].event == "final" and events[-1].json()["status"] == "DONE"


def test_concurrent_readers_of_a_live_job_each_see_every_event_once(
    server: ServerProcess, clients: Clients, carol: httpx.Client, programs: dict
) -> None:
    n = 6
    job = submit(carol, programs["publisher"], {"n": n, "delay": 0.2})
    token = carol.headers["Authorization"].removeprefix("Bearer ")
    readers = [clients(token) for _ in range(3)]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def reader(index: int) -> None:
        try:
            results[index] = read_stream(readers[index], job["id"])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 3
    for events in results.values():
        assert interim_seqs(events) == list(range(1, n + 1))
        assert finals(events) == [done_with({"published": n})]


def test_a_job_cancelled_right_after_submission_ends_cancelled(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    for _ in range(3):
        job = submit(carol, programs["sleeper"])
        cancelled = carol.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED", cancelled.json()
        assert cancelled.json()["reason"] == "CANCELLED BY USER"
    assert carol.get("/jobs", params={"pending": "true"}).json()["total"] == 0


def test_idle_streams_get_keepalive_comments_at_the_configured_interval(
    server: ServerProcess, carol: httpx.Client, programs: dict
) -> None:
    """``QRUNTIME_STREAM_PING_SECONDS`` sets how often an idle stream gets ``: ping``."""
    job = submit(carol, programs["sleeper"])
    try:
        wait_for_job(carol, job["id"], ("RUNNING",), server=server)
        lines: list[str] = []
        started = time.monotonic()
        timeout = httpx.Timeout(10, read=5 * PING_SECONDS + 2)
        try:
            with carol.stream("GET", f"/jobs/{job['id']}/stream", timeout=timeout) as response:
                for line in response.iter_lines():
                    lines.append(line)
                    if line.startswith(":"):
                        break
        except httpx.ReadTimeout:
            pass
        waited = time.monotonic() - started
        assert any(line.startswith(":") for line in lines), (
            f"no keep-alive comment within {waited:.1f} s although the server was started with "
            f"QRUNTIME_STREAM_PING_SECONDS={PING_SECONDS}; got {lines}"
        )
    finally:
        assert carol.post(f"/jobs/{job['id']}/cancel").json()["status"] == "CANCELLED"
