"""The 2021 IBM Quantum provider's routes (``/api/...``, docs/compat.md) over raw HTTP and
websockets, for what the real client (tests/acceptance/test_ibmq_client.py) cannot provoke:
a stream cut off and resumed, a server restarted under a stream, the caps on open streams,
cancelling, and every refusal in the one error shape that client parses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from server_harness import ServerProcess
from server_support import (
    assert_error,
    clients_for,
    running_server,
    upload,
    wait_for_job,
    wait_until,
)

SIMULATOR = "ibmq_qasm_simulator"
#: Open streams one user may have: small, so the cap is cheap to reach.
STREAMS_PER_USER = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base: Path = tmp_path_factory.mktemp("ibmq2021-api")
    env = {"QRUNTIME_MAX_STREAMS_PER_USER": str(STREAMS_PER_USER)}
    with running_server(base, max_concurrent_jobs=3, extra_env=env) as server:
        yield server


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """The 2021 client's view: ``X-Access-Token`` on every request, below ``/api``."""
    headers = {"X-Access-Token": server.admin_token}
    with httpx.Client(base_url=f"{server.url}/api", headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def programs(server: ServerProcess) -> dict[str, str]:
    with clients_for(server) as clients:
        return {
            name: upload(clients.admin, name)["id"] for name in ("slow_publisher", "sleeps_forever")
        }


def run(api: httpx.Client, program_id: str, params: Any = None, **extra: Any) -> httpx.Response:
    body = {"program_id": program_id, "backend": SIMULATOR, "params": params or {}, **extra}
    return api.post("/runtime/jobs", json=body)


def started(api: httpx.Client, program_id: str, params: Any = None) -> str:
    response = run(api, program_id, params)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def status(api: httpx.Client, job_id: str) -> str:
    return api.get(f"/runtime/jobs/{job_id}").json()["status"]


@contextmanager
def open_stream(
    server: ServerProcess, job_id: str, token: str | None = None
) -> Iterator[ClientConnection]:
    url = f"{server.url.replace('http', 'ws', 1)}/api/runtime/stream/jobs/{job_id}"
    headers = {"X-Access-Token": token or server.admin_token}
    with connect(url, additional_headers=headers, open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "acknowledged"
        yield ws


def streamed(server: ServerProcess, job_id: str, token: str | None = None) -> tuple[list, Any]:
    with open_stream(server, job_id, token) as ws:
        return until_closed(ws)


def until_closed(ws: ClientConnection) -> tuple[list[Any], int | None]:
    """Every message up to the server's close, and the close code."""
    received = []
    try:
        while True:
            received.append(json.loads(ws.recv(timeout=60)))
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd else None


def test_a_stream_that_reconnects_gets_each_interim_result_once(
    server: ServerProcess, api: httpx.Client, programs: dict[str, str]
) -> None:
    job_id = started(api, programs["slow_publisher"], {"n": 6, "delay": 0.5})
    with open_stream(server, job_id) as ws:
        first = [json.loads(ws.recv(timeout=60)) for _ in range(2)]
        ws.close_socket()  # cut off without a close frame, as a dropped connection is

    rest, code = streamed(server, job_id)

    assert code == 1000
    assert [m["i"] for m in first + rest] == list(range(6))
    # A restarted server, or another replica, resumes there too: tests/integration/
    # test_stream_resume.py


def test_a_new_token_gets_the_whole_stream(
    server: ServerProcess, api: httpx.Client, programs: dict[str, str]
) -> None:
    """The resume point belongs to one token's stream: another caller starts from the top."""
    job_id = started(api, programs["slow_publisher"], {"n": 3, "delay": 0})
    mine, _ = streamed(server, job_id)
    with clients_for(server) as clients:
        token = clients.admin.post("/users/admin/tokens", json={}).json()["token"]
    theirs, _ = streamed(server, job_id, token)
    assert [m["i"] for m in mine] == [m["i"] for m in theirs] == [0, 1, 2]


def test_websockets_count_towards_the_stream_caps(
    server: ServerProcess, api: httpx.Client, programs: dict[str, str]
) -> None:
    job_id = started(api, programs["sleeps_forever"])
    with ExitStack() as stack:
        streams = [
            stack.enter_context(open_stream(server, job_id)) for _ in range(STREAMS_PER_USER)
        ]
        with pytest.raises(InvalidStatus) as refused:
            stack.enter_context(open_stream(server, job_id))
        response = refused.value.response
        assert response.status_code == 429
        error = json.loads(response.body)["error"]
        assert error["code"] == "quota_exceeded"
        assert "QRUNTIME_MAX_STREAMS_PER_USER" in error["message"]
        url = f"{server.url.replace('http', 'ws', 1)}/api/ws/jobs/{job_id}/status/v/1"
        with connect(url) as status_socket:
            status_socket.send(json.dumps({"type": "authentication", "data": server.admin_token}))
            answer = json.loads(status_socket.recv(timeout=30))
        assert answer["type"] == "error" and "event streams open" in answer["data"]

        streams.pop().close()
        # a closed stream gives its slot back (once the server has seen it go)
        again = wait_until(lambda: _try_open(stack, server, job_id), what="a free slot")
        streams.append(again)
        assert api.post(f"/runtime/jobs/{job_id}/cancel").status_code == 204
        for ws in streams:
            assert until_closed(ws) == ([], 1000)


def _try_open(stack: ExitStack, server: ServerProcess, job_id: str) -> ClientConnection | None:
    try:
        return stack.enter_context(open_stream(server, job_id))
    except InvalidStatus:
        return None


def test_cancel_then_status_and_cancelling_a_finished_job(
    api: httpx.Client, programs: dict[str, str], server: ServerProcess
) -> None:
    job_id = started(api, programs["sleeps_forever"])
    wait_until(lambda: status(api, job_id) == "RUNNING", what="the job to run", server=server)
    assert_error(api.delete(f"/runtime/jobs/{job_id}"), 409, "invalid_state")

    assert api.post(f"/runtime/jobs/{job_id}/cancel").status_code == 204

    # the client's API_TO_JOB_STATUS maps CANCELLED to JobStatus.CANCELLED
    assert status(api, job_id) == "CANCELLED"
    again = assert_error(api.post(f"/runtime/jobs/{job_id}/cancel"), 409, "invalid_state")
    assert "already finished" in again["message"]  # the client raises RuntimeInvalidStateError
    assert api.delete(f"/runtime/jobs/{job_id}").status_code == 204
    assert_error(api.post(f"/runtime/jobs/{job_id}/cancel"), 404, "not_found")


NDARRAY_GARBAGE = {"__type__": "ndarray", "__value__": "bm90IHpsaWI="}
PROJECT = "/Network/ibm-q/Groups/open/Projects/main"

#: (method, path, request keywords, status, code, words the message must hold)
REFUSALS: list[tuple[str, str, dict[str, Any], int, str, tuple[str, ...]]] = [
    (
        "POST",
        "/users/loginWithToken",
        {"json": {"apiToken": "wrong"}},
        401,
        "not_authenticated",
        (),
    ),
    ("POST", "/users/loginWithToken", {"content": b"{not json"}, 422, "bad_request", ("JSON",)),
    ("GET", "/runtime/programs/no-such-program", {}, 404, "not_found", ("no-such-program",)),
    (
        "POST",
        "/runtime/programs",
        {"json": {"name": "x", "data": "%%%", "cost": 60}},
        400,
        "invalid_source",
        ("base64",),
    ),
    ("POST", "/runtime/programs", {"json": {"data": 5}}, 422, "bad_request", ("data",)),
    (
        "PATCH",
        "/runtime/programs/no-such-program",
        {"json": {"cost": "soon"}},
        422,
        "bad_request",
        ("cost",),
    ),
    (
        "PUT",
        "/runtime/programs/no-such-program/data",
        {"content": b"\xff\xfe"},
        400,
        "invalid_source",
        ("base64",),
    ),
    ("POST", "/runtime/jobs", {"json": {"program_id": "x"}}, 422, "bad_request", ("backend",)),
    (
        "POST",
        "/runtime/jobs",
        {"json": {"program_id": "{slow}", "backend": "ibmq_nowhere"}},
        400,
        "unknown_backend",
        ("ibmq_nowhere",),
    ),
    (
        "POST",
        "/runtime/jobs",
        {"json": {"program_id": "{slow}", "backend": SIMULATOR, "hub": "other"}},
        404,
        "not_found",
        ("other/open/main",),
    ),
    (
        "POST",
        "/runtime/jobs",
        {"json": {"program_id": "{slow}", "backend": SIMULATOR, "runtime": "qiskit:latest"}},
        400,
        "bad_request",
        ("image",),
    ),
    (
        "POST",
        "/runtime/jobs",
        {"json": {"program_id": "{slow}", "backend": SIMULATOR, "params": [1]}},
        400,
        "invalid_inputs",
        ("params",),
    ),
    # envelopes that cannot be translated: refused naming the type
    (
        "POST",
        "/runtime/jobs",
        {
            "json": {
                "program_id": "{slow}",
                "backend": SIMULATOR,
                "params": {"n": {"__type__": "Pickle", "__value__": "x"}},
            }
        },
        400,
        "invalid_inputs",
        ("'Pickle'",),
    ),
    (
        "POST",
        "/runtime/jobs",
        {"json": {"program_id": "{slow}", "backend": SIMULATOR, "params": {"n": NDARRAY_GARBAGE}}},
        400,
        "invalid_inputs",
        ("'ndarray'",),
    ),
    (
        "POST",
        "/runtime/jobs",
        {
            "json": {
                "program_id": "{slow}",
                "backend": SIMULATOR,
                "params": {
                    "n": {
                        "__type__": "settings",
                        "__module__": "os",
                        "__class__": "system",
                        "__value__": {},
                    }
                },
            }
        },
        400,
        "invalid_inputs",
        ("system",),
    ),
    ("GET", "/runtime/jobs", {"params": {"limit": -1}}, 422, "bad_request", ("limit",)),
    ("GET", "/runtime/jobs/no-such-job/results", {}, 404, "not_found", ("no-such-job",)),
    ("GET", "/runtime/jobs/no-such-job/logs", {}, 404, "not_found", ("no-such-job",)),
    ("GET", f"{PROJECT}/devices/ibmq_nowhere/properties", {}, 404, "not_found", ("ibmq_nowhere",)),
    (
        "GET",
        "/Network/ibm-q/Groups/open/Projects/other/devices/v/1",
        {},
        404,
        "not_found",
        ("ibm-q/open/other",),
    ),
    (
        "POST",
        f"{PROJECT}/Jobs",
        {"json": {"backend": {"name": 3}}},
        400,
        "bad_request",
        ("backend.name",),
    ),
    (
        "GET",
        f"{PROJECT}/Jobs/status/v/1",
        {"params": {"filter": "{"}},
        400,
        "bad_request",
        ("filter",),
    ),
    (
        "GET",
        f"{PROJECT}/Jobs/status/v/1",
        {"params": {"filter": json.dumps({"where": {"status": {"like": "%"}}})}},
        400,
        "bad_request",
        ("'like'",),
    ),
    (
        "GET",
        f"{PROJECT}/Jobs/status/v/1",
        {"params": {"filter": json.dumps({"where": {"name": {"regexp": "("}}})}},
        400,
        "bad_request",
        ("pattern",),
    ),
    (
        "PUT",
        f"{PROJECT}/Jobs/abc/qobj",
        {"params": {"backend": SIMULATOR}, "content": b"[]"},
        400,
        "bad_request",
        ("qobj",),
    ),
    ("GET", f"{PROJECT}/Jobs/no-such-job/v/1", {}, 404, "not_found", ("no-such-job",)),
]


def _fill(value: Any, program_id: str) -> Any:
    """The refusals' ``{slow}`` is the uploaded slow publisher's id."""
    if value == "{slow}":
        return program_id
    if isinstance(value, dict):
        return {key: _fill(item, program_id) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "request_args", "status_code", "code", "words"),
    REFUSALS,
    ids=[f"{method} {path} {status}" for method, path, _, status, _, _ in REFUSALS],
)
def test_refusals_have_the_error_shape_the_client_parses(
    api: httpx.Client,
    programs: dict[str, str],
    method: str,
    path: str,
    request_args: dict[str, Any],
    status_code: int,
    code: str,
    words: tuple[str, ...],
) -> None:
    """qiskit-ibmq-provider's session reads ``error.message`` and ``error.code`` from every
    refusal into its RequestsApiError (api/session.py); nothing is ever a 500."""
    request_args = _fill(request_args, programs["slow_publisher"])
    if "content" in request_args:
        request_args["headers"] = {"content-type": "application/json"}
    error = assert_error(api.request(method, path, **request_args), status_code, code)
    for word in words:
        assert word in error["message"], error


def test_the_stream_of_a_deleted_job_is_refused_in_the_error_shape(
    api: httpx.Client, programs: dict[str, str], server: ServerProcess
) -> None:
    job_id = started(api, programs["slow_publisher"], {"n": 1, "delay": 0})
    with clients_for(server) as clients:
        wait_for_job(clients.admin, job_id, server=server)
    assert api.delete(f"/runtime/jobs/{job_id}").status_code == 204
    with pytest.raises(InvalidStatus) as refused, open_stream(server, job_id):
        pass
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["error"]["code"] == "not_found"
