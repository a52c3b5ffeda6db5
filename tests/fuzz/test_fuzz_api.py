"""Schemathesis against the OpenAPI schema a real ``qruntime serve`` process serves.

Every operation is called with generated valid and invalid requests, as the admin and as an
ordinary user, and every response must be a documented status (no 5xx), with a documented
content type, headers and a body that matches the schema. Path, query and body ids are drawn
half of the time from things that exist (a private and a public program, finished jobs, user
and backend names), so the fuzzer gets past the 404s; ``DELETE`` draws from its own throwaway
programs and jobs, so the others survive the run.

The server is this module's own (own data dir, ``--max-concurrent-jobs 1``, a low per-user
queue cap): jobs the fuzzer manages to submit run or are refused, and nothing leaks into other
tests. ``QRUNTIME_FUZZ_EXAMPLES`` sets the examples per operation and also turns on the
coverage phase for the user, which CI runs as the admin only (see docs/fuzzing.md).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from fuzz_support import LONG_API_RUN, api_examples, fuzz_settings
from hypothesis import given
from schemathesis.specs.openapi.schemas import OpenApiSchema
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from server_harness import ServerProcess
from server_support import (
    assert_error,
    b64,
    create_user,
    running_server,
    submit,
    wait_for_job,
)

#: Random examples per operation and role; the default keeps this module near a minute on 2 cores.
EXAMPLES = api_examples(default=8)
USER = "fuzzer"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",  # 405 with an ``Allow`` header for methods a path lacks
    "ignored_auth",  # no or a wrong token is a 401 wherever the schema asks for one
)
SOURCE = "def main(backend, user_messenger, **kwargs):\n    return sorted(kwargs)\n"


def seed_metadata(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "A program for the API fuzzer.",
        "max_execution_time": 30,
        "spec": {"parameters": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        **extra,
    }


@dataclass(frozen=True)
class Seeds:
    """Things that exist when the fuzzer starts, so generated requests can name them."""

    user_token: str
    programs: list[str]
    jobs: list[str]
    doomed_programs: list[str]
    doomed_jobs: list[str]
    #: The user's session (one job in it, DONE) and batch.
    sessions: list[str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"QRUNTIME_MAX_QUEUED_JOBS_PER_USER": "2"}
    base = tmp_path_factory.mktemp("fuzz-api")
    with running_server(base, max_concurrent_jobs=1, extra_env=env) as server:
        yield server


def _upload(client: httpx.Client, name: str, **extra: Any) -> str:
    body = {"data": b64(SOURCE), "metadata": seed_metadata(name, **extra)}
    response = client.post("/programs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def seeds(server: ServerProcess) -> Iterator[Seeds]:
    with server.client() as admin:
        user_token = create_user(admin, USER)["token"]
        with server.client(user_token) as user:
            private = _upload(user, "fuzz-private")
            public = _upload(admin, "fuzz-public", is_public=True)
            doomed = [_upload(user, "fuzz-doomed"), _upload(admin, "fuzz-doomed")]
            # One job runs to DONE; the second waits behind it (one job at a time) and is
            # cancelled, so a single worker run gives a finished job of each kind.
            opened = [
                user.post("/sessions", json={"mode": mode, "backend": "aer_simulator"}).json()["id"]
                for mode in ("session", "batch")
            ]
            body = {"program_id": private, "inputs": {"n": 1}, "session_id": opened[0]}
            done = user.post("/jobs", json=body).json()["id"]
            cancelled = submit(user, doomed[0], {"n": 2})["id"]
            assert user.post(f"/jobs/{cancelled}/cancel").status_code in (200, 409)
            for job in (done, cancelled):
                wait_for_job(user, job, server=server)
        yield Seeds(
            user_token=user_token,
            programs=[private, public],
            jobs=[done],
            doomed_programs=doomed,
            doomed_jobs=[cancelled],
            sessions=opened,
        )


def _config(server: ServerProcess, seeds: Seeds, token: str, *, admin: bool) -> schemathesis.Config:
    # The coverage phase (boundary values, missing and wrong-typed fields, other methods) sends
    # most of the requests; in CI it runs as the admin only, the user gets the random phase.
    coverage = {"enabled": admin or LONG_API_RUN}

    def often(dictionary: str) -> dict[str, Any]:
        return {"dictionary": dictionary, "probability": 0.5}

    ids = {
        "path.program_id": often("programs"),
        "body.program_id": often("programs"),
        "query.program_id": often("programs"),
        "path.job_id": often("jobs"),
        "path.session_id": often("sessions"),
        "body.session_id": often("sessions"),
        "query.session_id": often("sessions"),
        "path.name": often("names"),
        "body.backend": often("backends"),
        # A valid source half of the time, so uploads get past it to the metadata checks.
        "body.data": often("sources"),
    }
    return schemathesis.Config.from_dict(
        {
            "base-url": server.url,
            # The scheme's own auth (not a raw header), so checks know the token is the real one.
            "auth": {
                "openapi": {
                    "HTTPBearer": {"bearer": token},
                    # The 2021 IBM client's routes (docs/compat.md) take the same token here.
                    "IBMQAccessToken": {"api_key": token},
                    # Today's qiskit-ibm-runtime's routes take it as a bearer token too.
                    "IBMAccessToken": {"bearer": token},
                }
            },
            "request-timeout": 30,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "phases": {"stateful": {"enabled": False}, "coverage": coverage},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "dictionaries": {
                "programs": {"values": seeds.programs},
                "jobs": {"values": seeds.jobs},
                "names": {"values": [USER, "admin", "aer_simulator", "fake_manila"]},
                "backends": {"values": ["aer_simulator", "fake_manila"]},
                "sources": {"values": [b64(SOURCE)]},
                "doomed_programs": {"values": seeds.doomed_programs},
                "doomed_jobs": {"values": seeds.doomed_jobs},
                "sessions": {"values": seeds.sessions},
            },
            "parameters": ids,
            "operations": [
                {
                    "include-method": "DELETE",
                    "parameters": {
                        **ids,
                        "path.program_id": often("doomed_programs"),
                        "path.job_id": often("doomed_jobs"),
                    },
                },
                # The compatibility routes (docs/compat.md) translate onto the same services
                # the native ones call: half the examples each, so the module stays near its
                # old length.
                {
                    "include-path-regex": "^/(api|global-search|global-catalog|identity)/",
                    "exclude-method": "DELETE",
                    "generation": {"max-examples": max(2, EXAMPLES // 2), "database": "none"},
                },
            ],
        }
    )


def _schema(server: ServerProcess, seeds: Seeds, token: str, *, admin: bool) -> OpenApiSchema:
    config = _config(server, seeds, token, admin=admin)
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)


@pytest.fixture(scope="module")
def admin_schema(server: ServerProcess, seeds: Seeds) -> OpenApiSchema:
    return _schema(server, seeds, server.admin_token, admin=True)


@pytest.fixture(scope="module")
def user_schema(server: ServerProcess, seeds: Seeds) -> OpenApiSchema:
    return _schema(server, seeds, seeds.user_token, admin=False)


as_admin = schemathesis.pytest.from_fixture("admin_schema")
as_user = schemathesis.pytest.from_fixture("user_schema")


@as_admin.parametrize()
def test_api_as_admin(case: schemathesis.Case) -> None:
    case.call_and_validate()


@as_user.parametrize()
def test_api_as_user(case: schemathesis.Case) -> None:
    case.call_and_validate()


# --- the 2021 client's two websockets (not in the OpenAPI schema) -----------------------------

#: What a first message or a token may be: JSON of any shape, the expected shape with odd
#: values, and text that is not JSON.
socket_messages = (
    st.text(max_size=40)
    | st.builds(
        json.dumps,
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=6), children, max_size=3)
            ),
            max_leaves=8,
        ),
    )
    | st.builds(
        lambda kind, data: json.dumps({"type": kind, "data": data}),
        st.sampled_from(["authentication", "auth", ""]),
        st.none() | st.integers() | st.text(max_size=20) | st.lists(st.integers(), max_size=2),
    )
)
job_ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=30)


def _ws_url(server: ServerProcess, path: str) -> str:
    return server.url.replace("http", "ws", 1) + path


@fuzz_settings(max_examples=max(10, EXAMPLES * 3), deadline=None)
@given(first=socket_messages, job=job_ids | st.just("done"))
def test_the_status_websocket_answers_any_first_message(
    server: ServerProcess, seeds: Seeds, first: str, job: str
) -> None:
    """Authenticated, or an error message and 1008, or 4003 (no such job): never a 1011."""
    job_id = seeds.jobs[0] if job == "done" else quote(job, safe="")
    with connect(_ws_url(server, f"/api/ws/jobs/{job_id}/status/v/1"), open_timeout=30) as ws:
        ws.send(first)
        try:
            answer = json.loads(ws.recv(timeout=30))
            assert answer["type"] in ("authenticated", "error"), answer
            ws.recv(timeout=30)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code in (1000, 1008, 4002, 4003), closed


@fuzz_settings(max_examples=max(10, EXAMPLES * 3), deadline=None)
@given(
    token=st.text(alphabet=string.printable.strip(), max_size=40) | st.just("admin"),
    job=job_ids | st.just("done"),
)
def test_the_interim_websocket_refuses_in_the_error_shape(
    server: ServerProcess, seeds: Seeds, token: str, job: str
) -> None:
    """Accepted with an acknowledgement, or an HTTP refusal with the API's error body."""
    job_id = seeds.jobs[0] if job == "done" else quote(job, safe="")
    headers = {"X-Access-Token": server.admin_token if token == "admin" else token}
    url = _ws_url(server, f"/api/runtime/stream/jobs/{job_id}")
    try:
        with connect(url, additional_headers=headers, open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "acknowledged"
    except InvalidStatus as refused:
        assert refused.response.status_code in (400, 401, 404), refused.response
        error = json.loads(refused.response.body)["error"]
        assert error["code"] and error["message"], error


def test_server_survived(server: ServerProcess, seeds: Seeds) -> None:
    """After the fuzzing, the server still answers and logged no unexpected error."""
    with server.client() as admin:
        assert admin.get("/health").status_code == 200
        assert admin.get(f"/programs/{seeds.programs[0]}").status_code == 200
    assert "unexpected error" not in server.log(), server.log()[-5000:]


#: Routes anyone may call: liveness, and the 2021 IBM client's version probe (docs/compat.md).
PUBLIC_PATHS = ("/health", "/api/version")


def test_openapi_documents_the_error_body(server: ServerProcess) -> None:
    """Every refusal the schema declares has the one error body, never FastAPI's default."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, status)
            if path not in PUBLIC_PATHS:
                assert {"401", "422"} <= set(operation["responses"]), (method, path)


# --- what the fuzzer (and the parser fuzz tests) found, as plain requests --------------------

BIG = 2**63  # one past the largest BIGINT: an OverflowError in the query, i.e. a 500, before


def test_offsets_and_sequence_numbers_past_bigint_are_refused(
    server: ServerProcess, seeds: Seeds
) -> None:
    job = seeds.jobs[0]
    with server.client() as admin:
        for path in ("/jobs", "/programs"):
            assert_error(admin.get(path, params={"offset": BIG}), 422, "bad_request")
            assert admin.get(path, params={"offset": BIG - 1}).status_code == 200
        interims = f"/jobs/{job}/interim_results"
        assert_error(admin.get(interims, params={"since": BIG}), 422, "bad_request")
        assert admin.get(interims, params={"since": BIG - 1}).json() == {"interim_results": []}
        stream = f"/jobs/{job}/stream"
        assert_error(admin.get(stream, params={"since": BIG}), 422, "bad_request")
        refused = admin.get(stream, headers={"Last-Event-ID": str(BIG)})
        assert_error(refused, 400, "bad_request")
        replay = admin.get(stream, headers={"Last-Event-ID": str(BIG - 1)})
        assert replay.status_code == 200 and "event: final" in replay.text


def _raw_post(client: httpx.Client, path: str, body: str, method: str = "POST") -> httpx.Response:
    headers = {"content-type": "application/json"}
    return client.request(method, path, content=body.encode(), headers=headers)


def _json_with(value: Any, raw: str) -> str:
    """``value`` as JSON with the string ``"RAW"`` replaced by ``raw``, which json.dumps refuses
    or cannot nest that deep."""
    return json.dumps(value).replace('"RAW"', raw)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
def test_metadata_with_numbers_json_cannot_carry_is_refused(
    server: ServerProcess, seeds: Seeds, number: str
) -> None:
    """Python's parser (and so FastAPI's) reads these; they were stored, then served as null."""
    spec = {"parameters": {"type": "object", "minimum": "RAW"}}
    upload = {"data": b64(SOURCE), "metadata": seed_metadata("nan") | {"spec": spec}}
    with server.client(seeds.user_token) as user:
        response = _raw_post(user, "/programs", _json_with(upload, number))
        error = assert_error(response, 400, "invalid_metadata")
        assert error["problems"][0]["location"] == "metadata.spec.parameters.minimum"
        path = f"/programs/{seeds.programs[0]}"
        patch = _raw_post(user, path, _json_with({"spec": spec}, number), "PATCH")
        assert_error(patch, 400, "invalid_metadata")


def test_deeply_nested_requests_are_refused_not_a_server_error(
    server: ServerProcess, seeds: Seeds
) -> None:
    deep = '{"a": ' * 600 + "1" + "}" * 600
    upload = {"data": b64(SOURCE), "metadata": seed_metadata("deep") | {"spec": "RAW"}}
    with server.client(seeds.user_token) as user:
        response = _raw_post(user, "/programs", _json_with(upload, deep))
        assert_error(response, 400, "invalid_metadata")
        unparsable = _json_with({"data": "", "metadata": "RAW"}, "[" * 5000)
        assert_error(_raw_post(user, "/programs", unparsable), 400, "bad_request")
        job = {"program_id": seeds.programs[0], "inputs": {"n": "RAW"}}
        assert_error(_raw_post(user, "/jobs", _json_with(job, deep)), 400, "invalid_inputs")
        assert user.get("/health").status_code == 200


def test_method_not_allowed_says_which_methods_are(server: ServerProcess) -> None:
    """The 405 handler dropped Starlette's ``Allow`` header (RFC 9110 requires it)."""
    with server.client() as admin:
        response = admin.request("TRACE", "/programs")
        assert_error(response, 405, "method_not_allowed")
        # Starlette names the methods of the first route on the path (FastAPI has one per method).
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert allowed and allowed <= {"GET", "POST"}, allowed
