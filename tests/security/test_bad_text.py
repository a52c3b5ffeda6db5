"""Text that is not valid (lone surrogates, NUL) is refused where it enters, on both databases.

Through a real server on SQLite and on PostgreSQL: requests with bad text get a 4xx naming the
field and store nothing; a job that sends bad text back ends ERROR naming the problem; rows
stored before these checks are repaired at start; and no read ever answers 5xx. A hypothesis
test round-trips arbitrary Unicode, surrogates and NUL included, through every endpoint.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from integration.storage_support import fresh_database
from qruntime.domain.text import REPLACEMENT, repair_text, text_problem
from qruntime.service.tokens import hash_token
from qruntime.storage import Database
from qruntime.storage.database import alembic_config
from security.database_servers import BACKINGS, DATABASES, server_on
from server_harness import ServerProcess
from server_support import (
    assert_error,
    clients_for,
    counts,
    read_stream,
    running_server,
    upload,
    wait_for_job,
)

#: Any code point, lone surrogates (category Cs) and NUL included, the troublesome ones often.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x00", "\udc80", "\ud800", "\udfff", "\r", "\n", "\ufffd", "\U0001f600"]),
        st.characters(codec=None, exclude_categories=()),
    ),
    max_size=12,
)


@pytest.fixture(scope="module", params=BACKINGS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with server_on(request.param, tmp_path_factory, "bad-text", request=request) as server:
        yield server


@pytest.fixture(scope="module")
def writer(server: ServerProcess) -> Iterator[httpx.Client]:
    with clients_for(server) as clients:
        yield clients.user(f"w{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def echo(writer: httpx.Client) -> str:
    return upload(writer, "text/echo_text", name="echo-text")["id"]


def send_json(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """JSON with lone surrogates escaped (``\\udc80``), as any client may send them; httpx's own
    ``json=`` cannot encode them."""
    headers = {"Content-Type": "application/json"}
    return client.request(method, path, content=json.dumps(body), headers=headers)


def url_part(value: str) -> str:
    """Percent-encoded as a careless client would: lone surrogates as their UTF-8-like bytes."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def assert_no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.url, response.status_code, response.text)


def assert_reads_work(server: ServerProcess, client: httpx.Client, admin_token: str = "") -> None:
    """Every list and detail read of the owner's and the admin's, on whatever is stored."""
    with clients_for(server) as clients:
        for reader in (client, clients(admin_token) if admin_token else clients.admin):
            jobs = reader.get("/jobs", params={"limit": 100})
            assert jobs.status_code == 200, jobs.text
            for job in jobs.json()["jobs"]:
                for suffix in ("", "/interim_results", "/logs", "/results"):
                    assert_no_server_error(reader.get(f"/jobs/{job['id']}{suffix}"))
            programs = reader.get("/programs", params={"limit": 100})
            assert programs.status_code == 200, programs.text
            for program in programs.json()["programs"]:
                assert_no_server_error(reader.get(f"/programs/{program['id']}"))


def test_a_lone_surrogate_in_inputs_is_refused_and_nothing_is_stored(server, writer, echo):
    with clients_for(server) as clients:
        before = counts(clients.admin)
        body = {"program_id": echo, "inputs": {"text": "ok", "extra": ["fine", "bad \udc80"]}}
        error = assert_error(send_json(writer, "POST", "/jobs", body), 422, "bad_request")
        assert error["problems"][0]["location"] == "body.inputs.extra[1]", error
        assert "lone surrogate U+DC80" in error["problems"][0]["message"], error
        key = assert_error(
            send_json(writer, "POST", "/jobs", {"program_id": echo, "inputs": {"\ud800": 1}}),
            422,
            "bad_request",
        )
        assert key["problems"][0]["location"] == "body.inputs", key
        assert counts(clients.admin) == before
    assert_reads_work(server, writer)


def test_nul_in_a_plain_text_field_is_refused(server, writer, echo):
    meta = {
        "name": "nul-description",
        "description": "before\x00after",
        "max_execution_time": 60,
        "spec": {},
    }
    upload_body = {"data": "ZGVmIG1haW4oYmFja2VuZCwgdXNlcl9tZXNzZW5nZXIpOgogICAgcmV0dXJuIDEK"}
    refused = send_json(writer, "POST", "/programs", {**upload_body, "metadata": meta})
    error = assert_error(refused, 400, "invalid_metadata")
    assert error["problems"][0]["location"] == "metadata.description", error
    assert "NUL" in error["problems"][0]["message"], error

    patch = send_json(writer, "PATCH", f"/programs/{echo}", {"description": "x\x00y"})
    error = assert_error(patch, 422, "bad_request")
    assert error["problems"][0]["location"] == "body.description", error
    assert writer.get(f"/programs/{echo}").json()["description"] != "x\x00y"
    with clients_for(server) as clients:
        name = send_json(clients.admin, "POST", "/users", {"name": "eve\x00"})
        assert_error(name, 422, "bad_request")
    assert_reads_work(server, writer)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/jobs/j-%00", "path"),
        ("/programs/%ff%fe", "path"),
        ("/jobs?program_id=a%00b", "query.program_id"),
        ("/jobs?limit=1&program_id=%ed%b2%80", "query.program_id"),
        ("/users/a%00/tokens", "path"),
    ],
)
def test_bad_text_in_the_url_is_refused_before_any_query(server, writer, path, location):
    error = assert_error(writer.get(path), 422, "bad_request")
    assert error["problems"][0]["location"] == location, error


def test_a_nul_inside_inputs_round_trips(server, writer, echo):
    body = {"program_id": echo, "inputs": {"text": "a\x00b"}}
    response = send_json(writer, "POST", "/jobs", body)
    assert response.status_code == 201, response.text
    job = wait_for_job(writer, response.json()["id"], server=server)

    assert job["status"] == "DONE", job
    assert job["inputs"] == {"text": "a\x00b"}
    assert writer.get(f"/jobs/{job['id']}/results").json() == {"text": "a\x00b"}
    interims = writer.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
    assert [i["data"] for i in interims] == [{"text": "a\x00b"}]
    assert f"a{REPLACEMENT}b" in writer.get(f"/jobs/{job['id']}/logs").text


def test_bad_text_a_job_sends_back_ends_it_in_error_naming_the_problem(server, writer):
    program = upload(writer, "text/bad_text", name="bad-text")["id"]
    expected = {
        "publish": ["an interim result cannot be stored", "lone surrogate U+DC80"],
        "return": ["the value returned by main() cannot be stored", "lone surrogate"],
        "frame_interim": ["interim result 1 cannot be stored", "lone surrogate"],
        "frame_not_json": ["interim result 1 cannot be stored", "not valid JSON"],
        "frame_result": ["the value returned by main() cannot be stored", "a key"],
        "raise": ["ValueError", f"bad {REPLACEMENT} text {REPLACEMENT} in an exception"],
    }
    jobs = {}
    for how in expected:
        response = writer.post("/jobs", json={"program_id": program, "inputs": {"how": how}})
        assert response.status_code == 201, response.text
        jobs[how] = response.json()["id"]

    for how, words in expected.items():
        job = wait_for_job(writer, jobs[how], server=server)
        assert job["status"] == "ERROR", (how, job)
        assert job["reason"] == "PROGRAM FAILED", (how, job)
        assert all(word in job["error_message"] for word in words), (how, job["error_message"])
        interims = writer.get(f"/jobs/{job['id']}/interim_results")
        assert interims.status_code == 200 and interims.json()["interim_results"] == [], how
    logs = writer.get(f"/jobs/{jobs['raise']}/logs").text
    assert f"a NUL {REPLACEMENT} in the output" in logs
    assert_reads_work(server, writer)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(value=ANY_TEXT)
def test_any_text_round_trips_or_is_refused_but_never_500(server, writer, echo, value):
    """Accepted text comes back unchanged (the log: NUL as U+FFFD); refused text is a 4xx."""
    valid = text_problem(value) is None
    valid_json = text_problem(value, allow_nul=True) is None

    patched = send_json(writer, "PATCH", f"/programs/{echo}", {"description": value})
    assert patched.status_code == (200 if valid else 422), patched.text
    if valid:
        assert writer.get(f"/programs/{echo}").json()["description"] == value
    for response in (
        writer.get(f"/jobs?program_id={url_part(value)}"),
        writer.get(f"/jobs/{url_part(value)}"),
        writer.get(f"/jobs/{url_part(value)}/interim_results"),
        writer.get(f"/programs?offset={url_part(value)}"),
    ):
        assert_no_server_error(response)
    submitted = send_json(writer, "POST", "/jobs", {"program_id": echo, "inputs": {"text": value}})
    assert submitted.status_code == (201 if valid_json else 422), submitted.text
    if not valid_json:
        return
    job = wait_for_job(writer, submitted.json()["id"], server=server)
    assert job["status"] == "DONE" and job["inputs"] == {"text": value}, job
    assert writer.get(f"/jobs/{job['id']}/results").json() == {"text": value}
    interims = writer.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
    assert [i["data"] for i in interims] == [{"text": value}]
    streamed = [e.json()["data"] for e in read_stream(writer, job["id"]) if e.event == "interim"]
    assert streamed == [{"text": value}]
    printed = (repair_text(value) + "\n").replace("\r\n", "\n")
    assert printed in writer.get(f"/jobs/{job['id']}/logs").text


# --- rows stored before these checks -------------------------------------------------------------

OLD_TOKEN = "qrt_old-admin-token-from-before"


@pytest.mark.parametrize("database", DATABASES)
def test_rows_stored_before_the_checks_are_repaired_at_start(database, tmp_path):
    """A database written by an older server (schema 0001) with bad text in every kind of
    column: the new server migrates it and then reads all of it without a 5xx."""
    with fresh_database(database, tmp_path) as db:
        with db.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
        stored = store_old_bad_rows(db)
        with (
            running_server(tmp_path / "server", database_url=db.url) as server,
            clients_for(server) as clients,
        ):
            admin = clients(OLD_TOKEN)
            assert_reads_work(server, admin, OLD_TOKEN)
            job = admin.get(f"/jobs/{stored['job']}").json()
            assert job["inputs"] == {"x": f"bad {REPLACEMENT}"}, job
            assert admin.get(f"/jobs/{stored['job']}/results").json() == [REPLACEMENT]
            interims = admin.get(f"/jobs/{stored['job']}/interim_results").json()
            assert [i["data"] for i in interims["interim_results"]] == [REPLACEMENT, "}{"]
            program = admin.get(f"/programs/{stored['program']}").json()
            assert program["spec"]["parameters"]["description"] == REPLACEMENT, program
            if database == "sqlite":
                assert program["description"] == f"a{REPLACEMENT}b", program
        with db.engine.connect() as connection:
            size = connection.execute(
                text("SELECT stored_bytes FROM jobs WHERE id = :id"), {"id": stored["job"]}
            ).scalar_one()
        assert size > 0


def store_old_bad_rows(db: Database) -> dict[str, str]:
    """What an older server stored from bad requests and hand-written frames; its only user
    is the admin ``old``, with the token OLD_TOKEN."""
    description = "a\x00b" if db.dialect == "sqlite" else "ab"  # PostgreSQL refused NUL
    with db.engine.begin() as connection:
        user_id = connection.execute(
            text(
                "INSERT INTO users (name, role, created_at) VALUES ('old', 'admin', :now) "
                "RETURNING id"
            ),
            {"now": "2026-01-01 00:00:00"},
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO tokens (id, user_id, token_hash, created_at)"
                " VALUES ('t-old', :user, :hash, :now)"
            ),
            {"user": user_id, "hash": hash_token(OLD_TOKEN), "now": "2026-01-01 00:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO programs (id, name, owner_id, description, max_execution_time,"
                " version, spec, is_public, source, created_at, updated_at) VALUES"
                " ('old-program', 'old-program', :user, :description, 60, NULL, :spec, false,"
                " 'def main(backend, user_messenger):\n    return 1\n', :now, :now)"
            ),
            {
                "user": user_id,
                "description": description,
                "spec": '{"parameters": {"type": "object", "description": "\\udc80"}}',
                "now": "2026-01-01 00:00:00",
            },
        )
        connection.execute(
            text(
                "INSERT INTO jobs (id, program_id, program_name, owner_id, backend, status,"
                " reason, error_message, inputs, source, max_execution_time, result, created_at,"
                " started_at, ended_at, interim_count, log_bytes, log_truncated) VALUES"
                " ('j-old', 'old-program', 'old-program', :user, 'aer_simulator', 'DONE', NULL,"
                " :error, :inputs, 'def main(b, m):\n    pass\n', 60, :result, :now, :now, :now,"
                " 2, 0, false)"
            ),
            {
                "user": user_id,
                "error": description,
                "inputs": '{"x": "bad \\udc80"}',
                "result": '["\\uDC80"]',
                "now": "2026-01-01 00:00:00",
            },
        )
        for seq, data in ((1, '"\\udc80"'), (2, "}{")):
            connection.execute(
                text(
                    "INSERT INTO interim_results (job_id, seq, data, created_at)"
                    " VALUES ('j-old', :seq, :data, :now)"
                ),
                {"seq": seq, "data": data, "now": "2026-01-01 00:00:00"},
            )
        if db.dialect == "sqlite":
            connection.execute(
                text(
                    "INSERT INTO log_lines (job_id, stream, text, created_at)"
                    " VALUES ('j-old', 'stdout', :line, :now)"
                ),
                {"line": "nul \x00 here", "now": "2026-01-01 00:00:00"},
            )
    return {"job": "j-old", "program": "old-program"}
