"""Who sees what, against a real server: private programs and other users' jobs are 404 on
every route (never 403), public programs run for everyone but change only for their owner,
``open`` users run but never upload, admins see everything."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from server_harness import ServerProcess
from server_support import (
    Clients,
    assert_error,
    b64,
    counts,
    metadata,
    run_to_end,
    running_server,
    source_b64,
    submit,
    upload,
    wait_for_job,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("visibility")) as server:
        yield server


@pytest.fixture(scope="module")
def bob(clients: Clients) -> httpx.Client:
    return clients.user("bob")


@pytest.fixture(scope="module")
def olive(clients: Clients) -> httpx.Client:
    return clients.user("olive", "open")


@pytest.fixture(scope="module")
def program(alice: httpx.Client) -> dict:
    """alice's hello-world, private."""
    return upload(alice, "hello_world")


@pytest.fixture(scope="module")
def alice_job(server: ServerProcess, alice: httpx.Client, program: dict) -> dict:
    job = run_to_end(alice, program["id"], {"iterations": 2}, server=server)
    assert job["status"] == "DONE", job
    return job


def program_routes(pid: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/programs/{pid}", None),
        ("PATCH", f"/programs/{pid}", {"description": "taken over"}),
        ("PUT", f"/programs/{pid}/data", {"data": b64("def main(backend, user_messenger): 0\n")}),
        ("PUT", f"/programs/{pid}/public", None),
        ("PUT", f"/programs/{pid}/private", None),
        ("DELETE", f"/programs/{pid}", None),
        ("POST", "/jobs", {"program_id": pid, "inputs": {"iterations": 1}}),
    ]


def job_routes(jid: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/jobs/{jid}"),
        ("GET", f"/jobs/{jid}/results"),
        ("GET", f"/jobs/{jid}/interim_results"),
        ("GET", f"/jobs/{jid}/logs"),
        ("GET", f"/jobs/{jid}/stream"),
        ("POST", f"/jobs/{jid}/cancel"),
        ("DELETE", f"/jobs/{jid}"),
    ]


def listed_programs(client: httpx.Client) -> tuple[set[str], int]:
    body = client.get("/programs", params={"limit": 1000}).json()
    return {p["id"] for p in body["programs"]}, body["total"]


def listed_jobs(client: httpx.Client) -> tuple[set[str], int]:
    body = client.get("/jobs", params={"limit": 1000}).json()
    return {j["id"] for j in body["jobs"]}, body["total"]


def test_a_private_program_does_not_exist_for_other_users(
    admin: httpx.Client,
    alice: httpx.Client,
    bob: httpx.Client,
    olive: httpx.Client,
    program: dict,
    alice_job: dict,
) -> None:
    pid = program["id"]
    before = alice.get(f"/programs/{pid}").json()
    stored = counts(admin)
    for caller in (bob, olive):
        for method, path, body in program_routes(pid):
            response = caller.request(method, path, json=body)
            error = assert_error(response, 404, "not_found")
            assert pid in error["message"], (method, path, error)
            assert "forbidden" not in error["message"].lower()
        ids, total = listed_programs(caller)
        assert pid not in ids
        assert total == len(ids)
    assert alice.get(f"/programs/{pid}").json() == before
    assert counts(admin) == stored


def test_another_users_jobs_do_not_exist_for_bob(
    admin: httpx.Client, alice: httpx.Client, bob: httpx.Client, alice_job: dict
) -> None:
    jid = alice_job["id"]
    for method, path in job_routes(jid):
        error = assert_error(bob.request(method, path), 404, "not_found")
        assert jid in error["message"], (method, path, error)
    ids, total = listed_jobs(bob)
    assert jid not in ids
    assert total == len(ids)
    assert bob.get("/jobs", params={"program_id": alice_job["program_id"]}).json() == {
        "jobs": [],
        "total": 0,
    }
    # Nothing bob tried changed the job.
    assert alice.get(f"/jobs/{jid}").json() == alice_job
    assert alice.get(f"/jobs/{jid}/results").json() == "All done!"


def test_a_public_program_runs_for_everyone_but_changes_only_for_its_owner(
    server: ServerProcess,
    admin: httpx.Client,
    alice: httpx.Client,
    bob: httpx.Client,
    olive: httpx.Client,
    program: dict,
) -> None:
    pid = program["id"]
    _, bob_total_before = listed_programs(bob)
    published = alice.put(f"/programs/{pid}/public")
    assert published.status_code == 200 and published.json()["is_public"] is True

    for caller in (bob, olive):
        seen = caller.get(f"/programs/{pid}")
        assert seen.status_code == 200, seen.text
        assert seen.json()["data"] is None, "the source is for the owner and admins only"
        assert seen.json()["owner"] == "alice" and seen.json()["is_public"] is True
    ids, total = listed_programs(bob)
    assert pid in ids and total == bob_total_before + 1

    bob_job = submit(bob, pid, {"iterations": 1})
    olive_job = submit(olive, pid, {"iterations": 1})
    for client, job, owner in ((bob, bob_job, "bob"), (olive, olive_job, "olive")):
        done = wait_for_job(client, job["id"], server=server)
        assert done["status"] == "DONE", done
        assert done["owner"] == owner and done["program_id"] == pid
        assert client.get(f"/jobs/{job['id']}/results").json() == "All done!"
    # Each user's jobs stay their own, even on a shared public program.
    assert_error(alice.get(f"/jobs/{bob_job['id']}"), 404, "not_found")
    assert_error(bob.get(f"/jobs/{olive_job['id']}"), 404, "not_found")
    assert bob_job["id"] not in listed_jobs(alice)[0]

    before = alice.get(f"/programs/{pid}").json()
    stored = counts(admin)
    for method, path, body in program_routes(pid)[1:-1]:
        error = assert_error(bob.request(method, path, json=body), 403, "forbidden")
        assert "owner" in error["message"], error
    assert alice.get(f"/programs/{pid}").json() == before
    assert counts(admin) == stored

    upload_attempt = olive.post(
        "/programs", json={"data": source_b64("hello_world"), "metadata": metadata("hello_world")}
    )
    assert_error(upload_attempt, 403, "forbidden")
    assert counts(admin) == stored

    # Private again: gone for bob, though bob's own job record stays his.
    assert alice.put(f"/programs/{pid}/private").json()["is_public"] is False
    assert_error(bob.get(f"/programs/{pid}"), 404, "not_found")
    assert_error(
        bob.post("/jobs", json={"program_id": pid, "inputs": {"iterations": 1}}), 404, "not_found"
    )
    assert bob.get(f"/jobs/{bob_job['id']}").json()["status"] == "DONE"


def test_an_admin_sees_and_manages_everything(
    admin: httpx.Client, alice: httpx.Client, bob: httpx.Client, program: dict, alice_job: dict
) -> None:
    pid = program["id"]
    seen = admin.get(f"/programs/{pid}")
    assert seen.status_code == 200
    assert seen.json()["data"] == source_b64("hello_world")
    assert pid in listed_programs(admin)[0]

    admin_jobs, admin_total = listed_jobs(admin)
    alice_jobs, _ = listed_jobs(alice)
    bob_jobs, _ = listed_jobs(bob)
    assert alice_jobs | bob_jobs <= admin_jobs
    assert admin_total == len(admin_jobs)
    assert alice_job["id"] in admin_jobs

    jid = alice_job["id"]
    assert admin.get(f"/jobs/{jid}/results").json() == "All done!"
    interims = admin.get(f"/jobs/{jid}/interim_results").json()["interim_results"]
    assert [i["seq"] for i in interims] == [1, 2]
    assert admin.get(f"/jobs/{jid}/logs").status_code == 200

    patched = admin.patch(f"/programs/{pid}", json={"description": "Edited by the admin."})
    assert patched.status_code == 200, patched.text
    assert alice.get(f"/programs/{pid}").json()["description"] == "Edited by the admin."
    assert admin.put(f"/programs/{pid}/public").json()["is_public"] is True
    assert admin.put(f"/programs/{pid}/private").json()["is_public"] is False


def test_jobs_of_a_deleted_program_keep_their_records(
    server: ServerProcess, alice: httpx.Client
) -> None:
    doomed = upload(alice, "hello_world", name="doomed")
    job = run_to_end(alice, doomed["id"], {"iterations": 1}, server=server)
    assert job["status"] == "DONE", job
    assert alice.delete(f"/programs/{doomed['id']}").status_code == 204
    assert_error(alice.get(f"/programs/{doomed['id']}"), 404, "not_found")
    kept = alice.get(f"/jobs/{job['id']}")
    assert kept.status_code == 200, kept.text
    assert kept.json()["program_id"] == doomed["id"] and kept.json()["program_name"] == "doomed"
    assert alice.get(f"/jobs/{job['id']}/results").json() == "All done!"
    assert len(alice.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]) == 1
    assert job["id"] in listed_jobs(alice)[0]
