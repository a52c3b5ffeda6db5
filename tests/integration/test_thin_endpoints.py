"""The thin ``POST /jobs`` and ``GET /jobs/{id}/stream`` (api/thin_endpoints.py) answer every
request as the FastAPI routes do: each request goes to a server with them and to one without
(``QRUNTIME_THIN_ENDPOINTS=0``), and the answers must be equal, refusals above all."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from server_harness import ServerProcess
from server_support import (
    assert_error,
    clients_for,
    create_user,
    read_stream,
    running_server,
    submit,
    upload,
    wait_for_job,
    wait_until,
)

#: Headers an answer must carry alike on both servers, where it has them.
COMPARED_HEADERS = (
    "content-type",
    "www-authenticate",
    "connection",
    "cache-control",
    "x-accel-buffering",
    "allow",
)
COOKIE = "qruntime_session"


@dataclass
class Side:
    """One server, its users' clients and programs, and the names that differ between sides."""

    server: ServerProcess
    admin: httpx.Client
    alice: httpx.Client
    alice_token: str
    bob: httpx.Client
    anonymous: httpx.Client
    hello: str
    sleeper: str
    done_job: str = ""
    bobs_job: str = ""

    def normalised(self, text: str) -> str:
        for value, name in ((self.done_job, "<done>"), (self.bobs_job, "<bobs>")):
            text = text.replace(value, name) if value else text
        return text.replace(self.hello, "<hello>").replace(self.sleeper, "<sleeper>")


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Side]]:
    env = {"QRUNTIME_MAX_STREAMS_PER_USER": "1"}
    with (
        running_server(tmp_path_factory.mktemp("thin"), extra_env=env) as thin,
        running_server(
            tmp_path_factory.mktemp("routes"), extra_env={**env, "QRUNTIME_THIN_ENDPOINTS": "0"}
        ) as routes,
        clients_for(thin) as thin_clients,
        clients_for(routes) as routes_clients,
    ):
        found = {}
        for name, clients in (("thin", thin_clients), ("routes", routes_clients)):
            alice_token = create_user(clients.admin, "alice")["token"]
            alice, bob = clients(alice_token), clients.user("bob")
            side = Side(
                clients.server,
                clients.admin,
                alice,
                alice_token,
                bob,
                clients.anonymous(),
                upload(alice, "hello_world")["id"],
                upload(alice, "sleeps_forever")["id"],
            )
            publisher = {"n": 3, "delay": 0}  # the same interim results on both servers
            side.done_job = submit(alice, upload(alice, "slow_publisher")["id"], publisher)["id"]
            side.bobs_job = submit(bob, upload(bob, "slow_publisher")["id"], publisher)["id"]
            for job in (side.done_job, side.bobs_job):
                assert wait_for_job(side.admin, job)["status"] == "DONE"
            found[name] = side
        yield found


def answer(response: httpx.Response, side: Side) -> dict[str, Any]:
    """What a client sees, with the ids that differ between the two servers named alike."""
    body = side.normalised(response.read().decode())
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body
    headers = {
        h: side.normalised(response.headers[h]) for h in COMPARED_HEADERS if h in response.headers
    }
    return {"status": response.status_code, "headers": headers, "body": parsed}


def both(sides: dict[str, Side], request: Callable[[Side], httpx.Response]) -> dict[str, Any]:
    """The thin server's answer, after checking that the routes' answer is the same."""
    found = {name: answer(request(side), side) for name, side in sides.items()}
    assert found["thin"] == found["routes"]
    return found["thin"]


def post_jobs(client: httpx.Client, body: bytes, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return client.post("/jobs", content=body, headers=headers)


def job_body(side: Side, **fields: Any) -> bytes:
    return json.dumps({"program_id": side.hello, "inputs": {"iterations": 1}, **fields}).encode()


def error_code(found: dict[str, Any], status: int) -> str:
    assert found["status"] == status, found
    assert set(found["body"]["error"]) == {"code", "message", "problems"}, found
    return found["body"]["error"]["code"]


# --- POST /jobs refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"program_id": ', "application/json", 422, "bad_request"),  # not JSON
        (b"", "application/json", 422, "bad_request"),  # no body
        (b"[1, 2]", "application/json", 422, "bad_request"),  # not an object
        (b"[" * 20_000 + b"]" * 20_000, "application/json", 400, "bad_request"),  # too deep
        (b'{"program_id": "\\ud800"}', "application/json", 422, "bad_request"),  # lone surrogate
        (b'{"program_id": "a\\u0000b"}', "application/json", 422, "bad_request"),  # NUL
        (b'{"program_id": "x", "extra": 1}', "application/json", 422, "bad_request"),
        (b'{"backend": "aer_simulator"}', "application/json", 422, "bad_request"),
        (
            b'{"program_id": "x", "session_id": "' + b"s" * 101 + b'"}',
            "application/json",
            422,
            "bad_request",
        ),
        (b'{"program_id": "x"}', "text/plain", 422, "bad_request"),  # wrong content type
        (b'{"program_id": "x"}', None, 422, "bad_request"),  # no content type
        (b'{"program_id": "x"}', "application/json; charset=utf-8", 404, "not_found"),
        (b"\xff\xfe{}", "application/json", 422, "bad_request"),  # not UTF-8
    ],
)
def test_a_refused_body_gets_the_routes_answer(
    sides: dict[str, Side], body: bytes, content_type: str | None, status: int, code: str
) -> None:
    found = both(sides, lambda side: post_jobs(side.alice, body, content_type))
    assert error_code(found, status) == code


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"program_id": "no-such-program"}, 404, "not_found"),
        ({"backend": "no_such_backend"}, 400, "unknown_backend"),
        ({"inputs": [1, 2]}, 400, "invalid_inputs"),
        ({"max_execution_time": -5}, 400, "bad_request"),
        ({"resources": {"cpus": "many"}}, 400, "bad_request"),
        ({"session_id": "no-such-session"}, 404, "not_found"),
    ],
)
def test_a_refused_submit_gets_the_routes_answer(
    sides: dict[str, Side], fields: dict[str, Any], status: int, code: str
) -> None:
    found = both(sides, lambda side: post_jobs(side.alice, job_body(side, **fields)))
    assert error_code(found, status) == code


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no token
        {"authorization": "Bearer not-a-token"},
        {"authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"authorization": "Bearer"},
        {"cookie": "<alice>"},  # the dashboard's cookie, on POST
    ],
)
def test_a_caller_without_a_valid_bearer_token_is_refused_as_by_the_route(
    sides: dict[str, Side], headers: dict[str, str]
) -> None:
    def request(side: Side) -> httpx.Response:
        sent = {"content-type": "application/json"}
        for name, value in headers.items():
            sent[name] = f"{COOKIE}={side.alice_token}" if value == "<alice>" else value
        return side.anonymous.post("/jobs", content=job_body(side), headers=sent)

    found = both(sides, request)
    assert error_code(found, 401) == "not_authenticated"
    assert found["headers"]["www-authenticate"] == "Bearer"
    if "cookie" in headers:
        assert "GET and HEAD only" in found["body"]["error"]["message"]


def test_a_body_over_the_limit_without_a_token_is_refused_by_the_gate(
    sides: dict[str, Side],
) -> None:
    found = both(sides, lambda side: post_jobs(side.anonymous, b" " * 20_000 + job_body(side)))
    assert error_code(found, 401) == "not_authenticated"
    assert found["headers"]["connection"] == "close"


def test_a_submitted_job_reads_as_from_the_route(sides: dict[str, Side]) -> None:
    """201 and the same ``JobPublic`` fields, in the same order; the id and dates differ."""
    seen = {}
    for name, side in sides.items():
        response = post_jobs(side.alice, job_body(side, max_execution_time=30))
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/json"
        job = response.json()
        assert job["status"] == "QUEUED" and job["program_id"] == side.hello, job
        assert wait_for_job(side.alice, job["id"])["status"] == "DONE"
        seen[name] = {k: "<varies>" if k in ("id", "creation_date") else v for k, v in job.items()}
        seen[name]["program_id"] = "<hello>"
    assert list(seen["thin"]) == list(seen["routes"])
    assert seen["thin"] == seen["routes"]


def test_a_lower_case_bearer_scheme_submits(sides: dict[str, Side]) -> None:
    for side in sides.values():
        headers = {"authorization": f"bearer {side.alice_token}"}
        response = side.anonymous.post(
            "/jobs", content=job_body(side), headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
        wait_for_job(side.alice, response.json()["id"])


# --- GET /jobs/{id}/stream refusals ----------------------------------------------------------


def stream(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    return client.get(path, **kwargs)


@pytest.mark.parametrize(
    ("who", "job", "kwargs", "status", "code"),
    [
        ("anonymous", "<done>", {}, 401, "not_authenticated"),  # no token
        ("alice", "no-such-job", {}, 404, "not_found"),
        ("alice", "<bobs>", {}, 404, "not_found"),  # bob's job: not visible to alice
        ("alice", "<done>", {"headers": {"last-event-id": "abc"}}, 400, "bad_request"),
        ("alice", "<done>", {"headers": {"last-event-id": "-1"}}, 400, "bad_request"),
        ("alice", "<done>", {"params": {"since": "-1"}}, 422, "bad_request"),
        ("alice", "<done>", {"params": {"since": "x"}}, 422, "bad_request"),
        ("alice", "<done>", {"params": {"since": str(2**63)}}, 422, "bad_request"),
        ("anonymous", "<done>", {"headers": {"authorization": "Bearer wrong"}}, 401, None),
    ],
)
def test_a_refused_stream_gets_the_routes_answer(
    sides: dict[str, Side],
    who: str,
    job: str,
    kwargs: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    def request(side: Side) -> httpx.Response:
        job_id = {"<done>": side.done_job, "<bobs>": side.bobs_job}.get(job, job)
        return stream(getattr(side, who), f"/jobs/{job_id}/stream", **kwargs)

    found = both(sides, request)
    assert error_code(found, status) == (code or "not_authenticated")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"params": {"since": "0"}},
        {"headers": {"last-event-id": "0"}},
        {"headers": {"last-event-id": ""}, "params": {"since": "1"}},
        {"params": {"since": "0", "other": "1"}},
    ],
)
def test_a_finished_jobs_stream_is_the_routes(sides: dict[str, Side], kwargs: dict) -> None:
    found = both(sides, lambda side: stream(side.alice, f"/jobs/{side.done_job}/stream", **kwargs))
    assert found["status"] == 200
    assert found["headers"]["content-type"].startswith("text/event-stream"), found
    assert found["headers"]["cache-control"] == "no-cache"
    assert "event: final" in found["body"], found


def test_the_dashboard_cookie_opens_a_stream(sides: dict[str, Side]) -> None:
    def request(side: Side) -> httpx.Response:
        cookie = {"cookie": f"{COOKIE}={side.alice_token}"}
        return stream(side.anonymous, f"/jobs/{side.done_job}/stream", headers=cookie)

    found = both(sides, request)
    assert found["status"] == 200 and "event: final" in found["body"], found


def test_a_stream_past_the_callers_cap_is_refused_with_429(sides: dict[str, Side]) -> None:
    """One stream each (QRUNTIME_MAX_STREAMS_PER_USER=1): the second gets the route's 429.
    The open one, of a running job, starts with the job's status, as the route's does."""
    refusals, openings = {}, {}
    for name, side in sides.items():
        job = submit(side.alice, side.sleeper)["id"]
        wait_for_job(side.alice, job, ("RUNNING",))
        with side.alice.stream("GET", f"/jobs/{job}/stream") as first:
            assert first.status_code == 200
            lines = first.iter_lines()  # kept: a collected line iterator closes the stream
            openings[name] = list(itertools.takewhile(bool, lines))  # its first event
            refusals[name] = answer(stream(side.alice, f"/jobs/{job}/stream"), side)

        # The slot is given back once the first stream is closed: a new one opens.
        def opens(side: Side = side, job: str = job) -> bool:
            with side.alice.stream("GET", f"/jobs/{job}/stream") as again:
                return again.status_code == 200

        wait_until(opens, what="the stream slot to be given back")
        assert side.alice.post(f"/jobs/{job}/cancel").status_code in (200, 202)
        wait_for_job(side.alice, job)
    assert refusals["thin"] == refusals["routes"]
    assert error_code(refusals["thin"], 429) == "quota_exceeded"
    assert openings["thin"] == openings["routes"]
    assert openings["thin"][0] == "event: status", openings
    assert json.loads(openings["thin"][1].removeprefix("data: "))["status"] == "RUNNING"


def test_a_reconnecting_stream_resumes_after_its_last_event_id(sides: dict[str, Side]) -> None:
    """The interim results after ``Last-Event-ID`` only, then the final event."""
    for side in sides.values():
        events = read_stream(side.alice, side.done_job, headers={"last-event-id": "0"})
        assert [e.event for e in events][-1] == "final"
        assert all(int(e.id) > 0 for e in events if e.event == "interim"), events
        assert_error(side.alice.get(f"/jobs/{side.done_job}/stream?since=-1"), 422, "bad_request")
