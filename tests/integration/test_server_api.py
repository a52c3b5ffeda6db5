"""The REST contract of docs/api.md against a real server: every endpoint's success shape,
authentication and roles, and requests refused before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server_harness import ServerProcess
from server_support import (
    PROGRAMS,
    Clients,
    assert_error,
    b64,
    counts,
    create_user,
    metadata,
    running_server,
    source_b64,
    submit,
    upload,
)

MAX_SOURCE_BYTES = 20_000
MAX_INPUTS_BYTES = 20_000
MAX_METADATA_BYTES = 20_000
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROGRAM_KEYS = {
    "id",
    "name",
    "description",
    "max_execution_time",
    "version",
    "is_public",
    "owner",
    "spec",
    "creation_date",
    "update_date",
    "data",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "QRUNTIME_MAX_SOURCE_BYTES": str(MAX_SOURCE_BYTES),
        "QRUNTIME_MAX_INPUTS_BYTES": str(MAX_INPUTS_BYTES),
        "QRUNTIME_MAX_METADATA_BYTES": str(MAX_METADATA_BYTES),
    }
    with running_server(tmp_path_factory.mktemp("api"), extra_env=env) as server:
        yield server


@pytest.fixture(scope="module")
def hello(alice: httpx.Client) -> dict:
    """alice's private hello-world program (needs 5 qubits, ``iterations`` integer >= 0)."""
    return upload(alice, "hello_world")


# --- unauthenticated endpoints ---------------------------------------------------------------


def test_health_docs_and_openapi_need_no_token(clients: Clients) -> None:
    anonymous = clients.anonymous()
    health = anonymous.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": "0.1.0"}  # the details: admins only
    body = clients.admin.get("/health").json()
    assert {k: body[k] for k in ("status", "version", "database")} == {
        "status": "ok",
        "version": "0.1.0",
        "database": "sqlite",
    }
    assert body["sandbox"]["enabled"] is True
    assert {p["name"] for p in body["sandbox"]["protections"]} >= {"no network", "separate user"}

    docs = anonymous.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")

    openapi = anonymous.get("/openapi.json")
    assert openapi.status_code == 200
    paths = openapi.json()["paths"]
    for path in ("/programs", "/programs/{program_id}", "/jobs", "/jobs/{job_id}/stream"):
        assert path in paths, sorted(paths)


# --- authentication --------------------------------------------------------------------------

AUTHENTICATED_ROUTES = [
    ("GET", "/programs"),
    ("POST", "/programs"),
    ("GET", "/programs/some-program-abc123"),
    ("PATCH", "/programs/some-program-abc123"),
    ("PUT", "/programs/some-program-abc123/data"),
    ("PUT", "/programs/some-program-abc123/public"),
    ("PUT", "/programs/some-program-abc123/private"),
    ("DELETE", "/programs/some-program-abc123"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/j-0"),
    ("GET", "/jobs/j-0/results"),
    ("GET", "/jobs/j-0/interim_results"),
    ("GET", "/jobs/j-0/logs"),
    ("GET", "/jobs/j-0/stream"),
    ("POST", "/jobs/j-0/cancel"),
    ("DELETE", "/jobs/j-0"),
    ("POST", "/sessions"),
    ("GET", "/sessions"),
    ("GET", "/sessions/s-0"),
    ("POST", "/sessions/s-0/close"),
    ("POST", "/sessions/s-0/cancel"),
    ("GET", "/backends"),
    ("GET", "/backends/aer_simulator"),
    ("GET", "/environment"),
    ("GET", "/users/me"),
    ("POST", "/users"),
    ("GET", "/users"),
    ("POST", "/users/admin/tokens"),
    ("GET", "/users/admin/tokens"),
    ("POST", "/tokens/revoke"),
]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED_ROUTES)
def test_every_other_endpoint_refuses_a_missing_or_unknown_token(
    clients: Clients, method: str, path: str
) -> None:
    body = {} if method in ("POST", "PATCH", "PUT") else None
    for headers in ({}, {"Authorization": "Bearer qrt_not-a-real-token"}, {"Authorization": "x"}):
        response = clients.anonymous(headers).request(method, path, json=body)
        error = assert_error(response, 401, "not_authenticated")
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), (
            headers,
            response.headers,
        )
        assert "token" in error["message"], error


def test_revoked_tokens_stop_working_by_id_and_by_value(
    clients: Clients, admin: httpx.Client
) -> None:
    created = create_user(admin, "dave")
    second = admin.post("/users/dave/tokens")
    assert second.status_code == 201, second.text
    assert set(second.json()) == {"token", "token_id"}
    first_token, first_id = created["token"], created["token_id"]
    second_token, second_id = second.json()["token"], second.json()["token_id"]
    assert first_token != second_token and first_id != second_id
    dave1, dave2 = clients(first_token), clients(second_token)
    assert dave1.get("/users/me").status_code == 200
    assert dave2.get("/users/me").status_code == 200

    revoke = admin.post("/tokens/revoke", json={"token_id": first_id})
    assert revoke.status_code == 204, revoke.text
    assert revoke.content == b""
    assert_error(dave1.get("/users/me"), 401, "not_authenticated")
    assert dave2.get("/users/me").status_code == 200, "revoking one token revoked another"

    revoke = admin.post("/tokens/revoke", json={"token": second_token})
    assert revoke.status_code == 204, revoke.text
    assert_error(dave2.get("/users/me"), 401, "not_authenticated")
    assert_error(dave2.get("/programs"), 401, "not_authenticated")

    tokens = admin.get("/users/dave/tokens")
    assert tokens.status_code == 200, tokens.text
    by_id = {t["id"]: t for t in tokens.json()["tokens"]}
    assert set(by_id) == {first_id, second_id}
    for token in by_id.values():
        assert set(token) == {"id", "creation_date", "revoked_date"}
        assert ISO_Z.match(token["creation_date"]) and ISO_Z.match(token["revoked_date"]), token

    assert_error(admin.post("/tokens/revoke", json={"token_id": "tok_nope"}), 404, "not_found")
    assert_error(admin.post("/tokens/revoke", json={"token": "qrt_nope"}), 404, "not_found")


# --- users -----------------------------------------------------------------------------------


def test_admin_manages_users_and_tokens(clients: Clients, admin: httpx.Client) -> None:
    created = admin.post("/users", json={"name": "erin", "role": "open"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"user", "token", "token_id"}
    assert body["token"].startswith("qrt_") and body["token_id"].startswith("tok_"), body
    assert body["user"]["name"] == "erin" and body["user"]["role"] == "open"
    assert ISO_Z.match(body["user"]["creation_date"]), body

    me = clients(body["token"]).get("/users/me")
    assert me.status_code == 200, me.text
    assert me.json() == body["user"]
    admin_me = admin.get("/users/me").json()
    assert admin_me["name"] == "admin" and admin_me["role"] == "admin"
    assert set(admin_me) == {"name", "role", "creation_date", "instance"}
    assert (
        admin_me["instance"].startswith("crn:v1:") and admin_me["instance"] != me.json()["instance"]
    )

    users = admin.get("/users")
    assert users.status_code == 200, users.text
    by_name = {u["name"]: u for u in users.json()["users"]}
    assert by_name["erin"] == body["user"] and by_name["admin"]["role"] == "admin"

    issued = admin.post("/users/erin/tokens")
    assert issued.status_code == 201, issued.text
    assert clients(issued.json()["token"]).get("/users/me").json()["name"] == "erin"
    tokens = admin.get("/users/erin/tokens").json()["tokens"]
    assert {t["id"] for t in tokens} == {body["token_id"], issued.json()["token_id"]}
    assert all(t["revoked_date"] is None for t in tokens), tokens

    assert_error(admin.post("/users", json={"name": "erin", "role": "user"}), 409, "duplicate")
    error = assert_error(
        admin.post("/users", json={"name": "frank", "role": "boss"}), 400, "bad_request"
    )
    assert "role" in error["message"], error
    error = assert_error(admin.post("/users", json={"name": "Bad Name"}), 400, "bad_request")
    assert "name" in error["message"], error
    assert_error(admin.post("/users/nobody/tokens"), 404, "not_found")
    assert_error(admin.get("/users/nobody/tokens"), 404, "not_found")
    assert_error(admin.post("/users", json={"role": "user"}), 422, "bad_request")


@pytest.mark.parametrize("role", ["user", "open"])
def test_non_admins_may_not_call_admin_endpoints(
    clients: Clients, admin: httpx.Client, role: str
) -> None:
    caller = clients.user(f"not-admin-{role}", role)
    token_id = create_user(admin, f"victim-{role}")["token_id"]
    refused = [
        caller.post("/users", json={"name": f"sneaky-{role}", "role": "admin"}),
        caller.get("/users"),
        caller.post(f"/users/victim-{role}/tokens"),
        caller.get(f"/users/victim-{role}/tokens"),
        caller.post("/tokens/revoke", json={"token_id": token_id}),
    ]
    for response in refused:
        assert_error(response, 403, "forbidden")
    names = {u["name"] for u in admin.get("/users").json()["users"]}
    assert f"sneaky-{role}" not in names
    assert all(
        t["revoked_date"] is None
        for t in admin.get(f"/users/victim-{role}/tokens").json()["tokens"]
    )
    assert caller.get("/users/me").json()["role"] == role


def test_an_open_user_may_not_upload(clients: Clients, admin: httpx.Client) -> None:
    viewer = clients.user("olive", "open")
    before = counts(admin)
    response = viewer.post(
        "/programs", json={"data": source_b64("hello_world"), "metadata": metadata("hello_world")}
    )
    error = assert_error(response, 403, "forbidden")
    assert "open" in error["message"], error
    assert counts(admin) == before


# --- programs --------------------------------------------------------------------------------


def test_program_upload_get_update_publish_delete(alice: httpx.Client) -> None:
    source = (PROGRAMS / "hello_world.py").read_text()
    created = alice.post(
        "/programs",
        json={"data": source_b64("hello_world"), "metadata": metadata("hello_world")},
    )
    assert created.status_code == 201, created.text
    program = created.json()
    assert set(program) == PROGRAM_KEYS
    assert re.fullmatch(r"hello-world-[a-z0-9]{6}", program["id"]), program["id"]
    assert program["name"] == "hello-world"
    assert program["owner"] == "alice"
    assert program["is_public"] is False
    assert program["max_execution_time"] == 300
    assert program["version"] is None
    assert program["data"] is None, "only GET /programs/{id} returns the source"
    assert program["spec"]["backend_requirements"] == {"min_num_qubits": 5}
    assert program["spec"]["parameters"]["required"] == ["iterations"]
    assert ISO_Z.match(program["creation_date"]) and ISO_Z.match(program["update_date"])
    pid = program["id"]

    got = alice.get(f"/programs/{pid}")
    assert got.status_code == 200, got.text
    assert got.json() | {"data": None} == program
    assert got.json()["data"] == b64(source)

    listed = alice.get("/programs").json()
    assert next(p for p in listed["programs"] if p["id"] == pid)["data"] is None

    patched = alice.patch(
        f"/programs/{pid}",
        json={"description": "Changed.", "max_execution_time": 120, "version": "2.0"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "Changed."
    assert patched.json()["max_execution_time"] == 120
    assert patched.json()["version"] == "2.0"
    assert patched.json()["name"] == "hello-world" and patched.json()["id"] == pid
    assert patched.json()["spec"] == program["spec"]
    assert alice.get(f"/programs/{pid}").json()["description"] == "Changed."

    error = assert_error(
        alice.patch(f"/programs/{pid}", json={"name": "bad_name"}), 400, "invalid_metadata"
    )
    assert "metadata.name" in [p["location"] for p in error["problems"]], error
    assert_error(alice.patch(f"/programs/{pid}", json={"owner": "bob"}), 422, "bad_request")
    assert alice.get(f"/programs/{pid}").json()["name"] == "hello-world"

    new_source = "def main(backend, user_messenger, **kwargs):\n    return 'v2'\n"
    replaced = alice.put(f"/programs/{pid}/data", json={"data": b64(new_source)})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == pid
    assert alice.get(f"/programs/{pid}").json()["data"] == b64(new_source)
    error = assert_error(
        alice.put(f"/programs/{pid}/data", json={"data": b64("def run():\n    pass\n")}),
        400,
        "invalid_source",
    )
    assert "main" in error["message"], error
    assert alice.get(f"/programs/{pid}").json()["data"] == b64(new_source)

    public = alice.put(f"/programs/{pid}/public")
    assert public.status_code == 200, public.text
    assert public.json()["is_public"] is True
    private = alice.put(f"/programs/{pid}/private")
    assert private.status_code == 200, private.text
    assert private.json()["is_public"] is False

    deleted = alice.delete(f"/programs/{pid}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_error(alice.get(f"/programs/{pid}"), 404, "not_found")
    assert_error(alice.delete(f"/programs/{pid}"), 404, "not_found")
    assert pid not in {p["id"] for p in alice.get("/programs").json()["programs"]}


def test_metadata_is_public_uploads_a_public_program(alice: httpx.Client) -> None:
    program = upload(alice, "hello_world", is_public=True)
    assert program["is_public"] is True
    assert alice.delete(f"/programs/{program['id']}").status_code == 204


def test_program_listing_is_ordered_and_paged(clients: Clients) -> None:
    lister = clients.user("lister")
    ids = [upload(lister, "hello_world", name=name)["id"] for name in ("zeta", "alpha", "mid")]
    ids += [upload(lister, "hello_world", name="alpha")["id"]]
    listing = lister.get("/programs", params={"limit": 1000})
    assert listing.status_code == 200, listing.text
    mine = [p for p in listing.json()["programs"] if p["owner"] == "lister"]
    assert [(p["name"], p["id"]) for p in mine] == sorted((p["name"], p["id"]) for p in mine)
    assert {p["id"] for p in mine} == set(ids)
    total = listing.json()["total"]
    assert total == len(listing.json()["programs"])

    page = lister.get("/programs", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == total
    assert [p["id"] for p in page["programs"]] == [p["id"] for p in listing.json()["programs"][1:3]]
    assert_error(lister.get("/programs", params={"limit": 1001}), 422, "bad_request")


def test_bare_names_are_for_admins_only(admin: httpx.Client, alice: httpx.Client) -> None:
    before = counts(admin)
    error = assert_error(
        alice.post(
            "/programs",
            json={
                "data": source_b64("hello_world"),
                "metadata": metadata("hello_world", name="reserved-name"),
                "bare_name": True,
            },
        ),
        403,
        "forbidden",
    )
    assert "bare" in error["message"], error
    assert counts(admin) == before

    program = upload(admin, "hello_world", name="reserved-name", bare_name=True)
    assert program["id"] == "reserved-name"
    assert program["owner"] == "admin"
    duplicate = admin.post(
        "/programs",
        json={
            "data": source_b64("hello_world"),
            "metadata": metadata("hello_world", name="reserved-name"),
            "bare_name": True,
        },
    )
    error = assert_error(duplicate, 409, "duplicate")
    assert "reserved-name" in error["message"], error
    # Without bare_name the same name still gets a suffixed id.
    assert upload(admin, "hello_world", name="reserved-name")["id"].startswith("reserved-name-")


# --- backends --------------------------------------------------------------------------------


def test_backends_are_listed_and_looked_up(alice: httpx.Client) -> None:
    listing = alice.get("/backends")
    assert listing.status_code == 200, listing.text
    backends = {b["name"]: b for b in listing.json()["backends"]}
    keys = {
        "name",
        "description",
        "num_qubits",
        "basis_gates",
        "coupling_map_edges",
        "noisy",
        "simulator",
        "device",
    }
    assert "aer_simulator" in backends and "fake_armonk" in backends
    for backend in backends.values():
        assert set(backend) == keys, backend

    one = alice.get("/backends/fake_armonk")
    assert one.status_code == 200, one.text
    assert one.json() == backends["fake_armonk"]
    assert one.json()["num_qubits"] == 1
    assert alice.get("/backends/aer_simulator").json()["num_qubits"] >= 5
    error = assert_error(alice.get("/backends/no_such_backend"), 404, "not_found")
    assert "no_such_backend" in error["message"]


# --- refused before storage ------------------------------------------------------------------


def _without(meta: dict, key: str) -> dict:
    meta = dict(meta)
    del meta[key]
    return meta


BAD_METADATA = {
    "missing max_execution_time": (
        _without(metadata("hello_world"), "max_execution_time"),
        "metadata.max_execution_time",
        "max_execution_time",
    ),
    "underscore in name": (
        metadata("hello_world", name="hello_world"),
        "metadata.name",
        "underscore",
    ),
    "parameters not a schema": (
        metadata("hello_world", spec={"parameters": {"type": "no-such-type"}}),
        "metadata.spec.parameters",
        "spec.parameters",
    ),
    "parameters not an object": (
        metadata("hello_world", spec={"parameters": 5}),
        "metadata.spec.parameters",
        "spec.parameters",
    ),
    "negative max_execution_time": (
        metadata("hello_world", max_execution_time=-3),
        "metadata.max_execution_time",
        "max_execution_time",
    ),
    "metadata not an object": ([1, 2], "metadata", "metadata"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_bad_metadata_is_refused_and_nothing_stored(
    admin: httpx.Client, alice: httpx.Client, case: str
) -> None:
    meta, location, words = BAD_METADATA[case]
    before = counts(admin)
    response = alice.post("/programs", json={"data": source_b64("hello_world"), "metadata": meta})
    error = assert_error(response, 400, "invalid_metadata")
    assert location in [p["location"] for p in error["problems"]], error
    assert words in error["message"], error
    assert counts(admin) == before


BAD_SOURCES = {
    "no main": (source_b64("no_main"), "main"),
    "syntax error": (b64("def main(backend, user_messenger:\n    return 1\n"), "syntax"),
    "not base64": ("this is *not* base64!", "base64"),
    "not utf-8 text": (b64(b"\xff\xfe\x00def main(backend, user_messenger): pass\n"), "source"),
}


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_source_is_refused_and_nothing_stored(
    admin: httpx.Client, alice: httpx.Client, case: str
) -> None:
    data, words = BAD_SOURCES[case]
    before = counts(admin)
    response = alice.post("/programs", json={"data": data, "metadata": metadata("hello_world")})
    error = assert_error(response, 400, "invalid_source")
    assert words in error["message"].lower(), error
    assert counts(admin) == before


def test_oversized_source_and_body_are_refused_with_413(
    admin: httpx.Client, alice: httpx.Client
) -> None:
    before = counts(admin)
    padding = "# padding " + "x" * 70 + "\n"
    big = padding * (MAX_SOURCE_BYTES // len(padding) + 1)
    big += "def main(backend, user_messenger, **kwargs):\n    return 1\n"
    assert len(big) > MAX_SOURCE_BYTES
    response = alice.post("/programs", json={"data": b64(big), "metadata": metadata("hello_world")})
    error = assert_error(response, 413, "too_large")
    assert "source" in error["message"], error
    assert "QRUNTIME_MAX_SOURCE_BYTES" in error["message"], error

    wordy = metadata("hello_world", description="x" * MAX_METADATA_BYTES)
    response = alice.post("/programs", json={"data": source_b64("hello_world"), "metadata": wordy})
    error = assert_error(response, 413, "too_large")
    assert "metadata" in error["message"] and "QRUNTIME_MAX_METADATA_BYTES" in error["message"]

    huge = b64("#" * (2 * 1024 * 1024))  # over every body limit of this server
    response = alice.post("/programs", json={"data": huge, "metadata": metadata("hello_world")})
    assert_error(response, 413, "too_large")
    assert counts(admin) == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused_however_it_is_sent(
    alice: httpx.Client, chunked: bool
) -> None:
    """Every byte of this body would be refused by validation anyway (an unknown field), so
    only a body-size check can answer 413; a chunked body declares no length up front."""
    body = b'{"program_id": "x", "inputs": {}, "pad": "' + b"x" * 3_000_000 + b'"}'

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = alice.post(
        "/jobs",
        content=pieces() if chunked else body,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413, "too_large")


BAD_INPUTS = {
    "negative": ({"iterations": -1}, "inputs.iterations", "minimum"),
    "missing": ({}, "inputs", "'iterations' is a required property"),
    "wrong type": ({"iterations": "three"}, "inputs.iterations", "integer"),
    "float": ({"iterations": 1.5}, "inputs.iterations", "integer"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_inputs_breaking_the_schema_are_refused_and_nothing_stored(
    admin: httpx.Client, alice: httpx.Client, hello: dict, case: str
) -> None:
    inputs, location, words = BAD_INPUTS[case]
    before = counts(admin)
    response = alice.post("/jobs", json={"program_id": hello["id"], "inputs": inputs})
    error = assert_error(response, 400, "invalid_inputs")
    assert "iterations" in error["message"], error
    assert words in error["message"], error
    assert location in [p["location"] for p in error["problems"]], error
    assert counts(admin) == before


def test_job_requests_the_server_cannot_honour_are_refused_and_nothing_stored(
    admin: httpx.Client, alice: httpx.Client, hello: dict
) -> None:
    before = counts(admin)
    pid = hello["id"]

    error = assert_error(
        alice.post(
            "/jobs",
            json={"program_id": pid, "backend": "no_such_backend", "inputs": {"iterations": 1}},
        ),
        400,
        "unknown_backend",
    )
    assert "no_such_backend" in error["message"], error

    armonk = alice.get("/backends/fake_armonk").json()
    assert armonk["num_qubits"] < hello["spec"]["backend_requirements"]["min_num_qubits"]
    error = assert_error(
        alice.post(
            "/jobs",
            json={"program_id": pid, "backend": "fake_armonk", "inputs": {"iterations": 1}},
        ),
        400,
        "backend_requirements",
    )
    assert "fake_armonk" in error["message"] and "5" in error["message"], error

    error = assert_error(
        alice.post(
            "/jobs",
            json={"program_id": pid, "inputs": {"iterations": 1}, "max_execution_time": 301},
        ),
        400,
        "bad_request",
    )
    assert "max_execution_time" in error["message"], error
    assert "max_execution_time" in [p["location"] for p in error["problems"]], error

    error = assert_error(
        alice.post("/jobs", json={"program_id": pid, "inputs": [1, 2]}), 400, "invalid_inputs"
    )
    assert "inputs" in error["message"], error

    error = assert_error(
        alice.post(
            "/jobs",
            json={"program_id": pid, "inputs": {"iterations": 1, "pad": "x" * MAX_INPUTS_BYTES}},
        ),
        413,
        "too_large",
    )
    assert "inputs" in error["message"], error
    assert "QRUNTIME_MAX_INPUTS_BYTES" in error["message"], error

    error = assert_error(
        alice.post("/jobs", json={"program_id": "no-such-program-abcdef", "inputs": {}}),
        404,
        "not_found",
    )
    assert "no-such-program-abcdef" in error["message"], error

    error = assert_error(alice.post("/jobs", json={"inputs": {}}), 422, "bad_request")
    assert "program_id" in " ".join(p["location"] for p in error["problems"]), error
    assert counts(admin) == before


def test_sessions_group_jobs_close_and_cancel_and_refuse_what_they_cannot_take(
    alice: httpx.Client, clients: Clients, hello: dict
) -> None:
    assert_error(alice.post("/sessions", json={"backend": "no_such"}), 400, "unknown_backend")
    assert_error(alice.post("/sessions", json={"max_time": 0}), 422, "bad_request")
    assert_error(alice.post("/sessions", json={"mode": "dedicated"}), 422, "bad_request")
    opened = alice.post("/sessions", json={"mode": "batch", "max_time": 600})
    assert opened.status_code == 201, opened.text
    group = opened.json()
    assert (group["mode"], group["state"], group["accepting_jobs"]) == ("batch", "open", True)
    assert group["max_time"] == 600 and group["expiry_date"] is None
    job = submit(alice, hello["id"], {"iterations": 0}, session_id=group["id"])
    assert job["session_id"] == group["id"]
    inputs = {"iterations": 0}
    elsewhere = {"program_id": hello["id"], "backend": "fake_manila", "inputs": inputs}
    refused = alice.post("/jobs", json={**elsewhere, "session_id": group["id"]})
    assert "runs on 'aer_simulator'" in assert_error(refused, 400, "bad_request")["message"]
    theirs = clients.user("bob")
    assert_error(theirs.get(f"/sessions/{group['id']}"), 404, "not_found")
    own = upload(theirs, "hello_world")["id"]
    into_hers = {"program_id": own, "inputs": inputs, "session_id": group["id"]}
    assert (
        "session" in assert_error(theirs.post("/jobs", json=into_hers), 404, "not_found")["message"]
    )
    assert group["id"] not in [s["id"] for s in theirs.get("/sessions").json()["sessions"]]
    closed = alice.post(f"/sessions/{group['id']}/close")
    assert closed.status_code == 200 and closed.json()["accepting_jobs"] is False, closed.text
    late = alice.post(
        "/jobs", json={"program_id": hello["id"], "inputs": inputs, "session_id": group["id"]}
    )
    assert "was closed" in assert_error(late, 409, "invalid_state")["message"]
    shown = alice.get(f"/sessions/{group['id']}").json()
    assert [j["id"] for j in shown["jobs"]] == [job["id"]] and shown["job_count"] == 1
    cancelled = alice.post(f"/sessions/{group['id']}/cancel").json()
    assert cancelled["state"] == "cancelled" and cancelled["pending_jobs"] == 0, cancelled
    assert alice.get(f"/jobs/{job['id']}").json()["status"] in ("DONE", "CANCELLED")
    listed = alice.get("/sessions", params={"limit": 1}).json()
    assert listed["total"] >= 1 and listed["sessions"][0]["id"] == group["id"]


def test_unknown_routes_and_methods_use_the_error_shape(alice: httpx.Client) -> None:
    assert_error(alice.get("/no/such/route"), 404, "not_found")
    response = alice.put("/jobs")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_documented_endpoint_was_exercised() -> None:
    """Keeps the route list above honest against the documented API."""
    documented = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^ `?]*)", _api_doc()))
    routes = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p in documented}
    covered = {
        (m, re.sub(r"some-program-abc123|j-0|s-0|aer_simulator|admin(?=/tokens)", "{}", p))
        for m, p in AUTHENTICATED_ROUTES
    }
    covered |= {("GET", "/health"), ("GET", "/docs")}
    assert routes <= covered, sorted(routes - covered)


def _api_doc() -> str:
    return (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
