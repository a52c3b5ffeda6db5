"""The dashboard's security rules over plain HTTP (no browser): the session cookie reads the
JSON API but never changes anything, every page form needs its CSRF token and our origin,
other users' things are 404 pages, and a bad sign-in sets no cookie."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from server_harness import ServerProcess
from server_support import assert_error, submit, wait_for_job

COOKIE = "qruntime_session"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def browser_like(server: ServerProcess, token: str | None = None) -> httpx.Client:
    """What a browser sends: the cookie and our own Origin, never an Authorization header."""
    headers = {"Origin": server.url}
    if token is not None:
        headers["Cookie"] = f"{COOKIE}={token}"
    return httpx.Client(base_url=server.url, headers=headers, timeout=60, follow_redirects=False)


@pytest.fixture
def alice_browser(server: ServerProcess, tokens: dict[str, str]) -> Any:
    with browser_like(server, tokens["alice"]) as client:
        yield client


@pytest.fixture
def bob_browser(server: ServerProcess, tokens: dict[str, str]) -> Any:
    with browser_like(server, tokens["bob"]) as client:
        yield client


def form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = TOKEN_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)


def job_count(client: httpx.Client, program_id: str) -> int:
    return client.get("/jobs", params={"program_id": program_id, "limit": 0}).json()["total"]


def test_the_cookie_reads_the_api(alice_browser: httpx.Client, slow_publisher: dict) -> None:
    me = alice_browser.get("/users/me")
    assert me.status_code == 200 and me.json()["name"] == "alice"
    assert alice_browser.get(f"/programs/{slow_publisher['id']}").status_code == 200
    with alice_browser.stream("GET", "/jobs/j-nope/stream") as response:
        assert response.status_code == 404  # authenticated, and the job is not there


def test_the_cookie_never_changes_anything_through_the_api(
    alice_browser: httpx.Client, alice_api: httpx.Client, slow_publisher: dict
) -> None:
    program = slow_publisher["id"]
    job = submit(alice_api, program, {"n": 0})
    refused = [
        alice_browser.post("/jobs", json={"program_id": program, "inputs": {"n": 1}}),
        alice_browser.put(f"/programs/{program}/public"),
        alice_browser.patch(f"/programs/{program}", json={"description": "changed"}),
        alice_browser.delete(f"/jobs/{job['id']}"),
        alice_browser.delete(f"/programs/{program}"),
        alice_browser.post(f"/jobs/{job['id']}/cancel"),
    ]
    for response in refused:
        error = assert_error(response, 401, "not_authenticated")
        assert "Bearer" in error["message"]
    after = alice_api.get(f"/programs/{program}").json()
    assert after["is_public"] is False and after["description"] == slow_publisher["description"]
    assert alice_api.get(f"/jobs/{job['id']}").status_code == 200


def test_page_forms_need_the_form_token_and_our_origin(
    server: ServerProcess,
    alice_browser: httpx.Client,
    alice_api: httpx.Client,
    slow_publisher: dict,
) -> None:
    program = slow_publisher["id"]
    token = form_token(alice_browser, f"/ui/programs/{program}")
    job = submit(alice_api, program, {"n": 1000, "delay": 0.2})
    jobs_before = job_count(alice_api, program)
    forms = [
        (f"/ui/programs/{program}/run", {"backend": "aer_simulator", "inputs": '{"n": 1}'}),
        (f"/ui/programs/{program}/visibility", {"public": "true"}),
        (f"/ui/jobs/{job['id']}/cancel", {}),
        ("/ui/sign-out", {}),
    ]
    for path, fields in forms:
        missing = alice_browser.post(path, data=fields)
        wrong = alice_browser.post(path, data={**fields, "csrf_token": "0" * 64})
        elsewhere = alice_browser.post(
            path, data={**fields, "csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        for response in (missing, wrong, elsewhere):
            assert response.status_code == 403, (path, response.status_code, response.text)
            assert "text/html" in response.headers["content-type"]
            assert "set-cookie" not in response.headers
    assert alice_api.get(f"/jobs/{job['id']}").json()["status"] in ("QUEUED", "RUNNING")
    assert alice_api.get(f"/programs/{program}").json()["is_public"] is False
    assert job_count(alice_api, program) == jobs_before

    cancelled = alice_browser.post(f"/ui/jobs/{job['id']}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303, cancelled.text
    assert wait_for_job(alice_api, job["id"])["status"] == "CANCELLED"
    # Another user's form token is no good for alice's session either.
    with browser_like(server, server.admin_token) as admin:
        admins = form_token(admin, "/ui/programs")
    stolen = alice_browser.post(f"/ui/programs/{program}/visibility", data={"csrf_token": admins})
    assert stolen.status_code == 403


def test_other_users_things_are_404_pages(
    alice_api: httpx.Client,
    bob_browser: httpx.Client,
    server: ServerProcess,
    slow_publisher: dict,
) -> None:
    job = submit(alice_api, slow_publisher["id"], {"n": 0})
    paths = [f"/ui/jobs/{job['id']}", f"/ui/programs/{slow_publisher['id']}"]
    for path in paths:
        page = bob_browser.get(path)
        assert page.status_code == 404, (path, page.text)
        assert "text/html" in page.headers["content-type"]
        assert slow_publisher["description"] not in page.text
    token = form_token(bob_browser, "/ui/programs")
    cancel = bob_browser.post(f"/ui/jobs/{job['id']}/cancel", data={"csrf_token": token})
    assert cancel.status_code == 404
    run = bob_browser.post(
        f"/ui/programs/{slow_publisher['id']}/run",
        data={"csrf_token": token, "backend": "aer_simulator", "inputs": "{}"},
    )
    assert run.status_code == 404
    assert bob_browser.get(f"/jobs/{job['id']}/stream").status_code == 404
    with browser_like(server, server.admin_token) as admin:  # admins see everything
        for path in paths:
            assert admin.get(path).status_code == 200, path


def test_sign_in_sets_a_strict_http_only_cookie_only_for_a_good_token(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    with browser_like(server) as anonymous:
        bad = anonymous.post("/ui/sign-in", data={"token": "qrt_wrong", "next": "/ui/jobs"})
        assert bad.status_code == 401
        assert "not valid" in bad.text
        assert "set-cookie" not in bad.headers

        good = anonymous.post("/ui/sign-in", data={"token": tokens["alice"], "next": "/ui/jobs"})
        assert good.status_code == 303 and good.headers["location"] == "/ui/jobs"
        cookie = good.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={tokens['alice']};")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes

        for target in ("https://evil.example/", "//evil.example/ui/", "/ui/..\\evil", "/jobs"):
            sent = anonymous.post("/ui/sign-in", data={"token": tokens["alice"], "next": target})
            assert sent.headers["location"] == "/ui/programs", target  # never an open redirect

        forged = anonymous.post(
            "/ui/sign-in",
            data={"token": tokens["alice"]},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 403 and "set-cookie" not in forged.headers


def test_sign_out_clears_the_cookie(alice_browser: httpx.Client) -> None:
    token = form_token(alice_browser, "/ui/programs")
    response = alice_browser.post("/ui/sign-out", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/ui/sign-in"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f'{COOKIE}="";') and "max-age=0" in cookie.lower()


def test_pages_need_a_session_and_forbid_framing_and_foreign_scripts(
    server: ServerProcess, alice_browser: httpx.Client
) -> None:
    with browser_like(server) as anonymous:
        response = anonymous.get("/ui/jobs?status=DONE")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/sign-in?next=/ui/jobs%3Fstatus%3DDONE"
    with browser_like(server, "qrt_revoked-or-unknown") as stale:
        assert stale.get("/ui/programs").status_code == 303
    page = alice_browser.get("/ui/programs")
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    unknown = alice_browser.get("/ui/nothing-here")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]


def test_plotly_is_served_by_the_server_itself(alice_browser: httpx.Client) -> None:
    script = alice_browser.get("/ui/vendor/plotly.min.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js" in script.content[:200]
    assert alice_browser.get("/").headers["location"] == "/ui/programs"
