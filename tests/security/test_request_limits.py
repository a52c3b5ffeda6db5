"""Limits at the edge, through a real server on SQLite, PostgreSQL and Ray: bodies are read only
after the token is checked, failed authentications are limited per address, and event streams
are capped per user and in total, with their counts in ``/health``.

Requests that fail authentication on purpose come from addresses of their own (127.0.0.x),
so the limit on failed authentications never blocks the other tests' 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator

import httpx
import psutil
import pytest
from httpx_sse import connect_sse

from security.database_servers import BACKINGS, server_on
from server_harness import ServerProcess
from server_support import assert_error, clients_for, submit, upload, wait_for_job, wait_until

MAX_FAILED_AUTHS = 5
MAX_STREAMS = 5
MAX_STREAMS_PER_USER = 3
ANONYMOUS_LIMIT = 8 * 1024
MiB = 1024 * 1024
_addresses = iter(range(10, 250))


@pytest.fixture(scope="module", params=BACKINGS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "QRUNTIME_MAX_FAILED_AUTHS_PER_MINUTE": str(MAX_FAILED_AUTHS),
        "QRUNTIME_MAX_STREAMS": str(MAX_STREAMS),
        "QRUNTIME_MAX_STREAMS_PER_USER": str(MAX_STREAMS_PER_USER),
        # 127.0.0.1 plays the reverse proxy; the other loopback addresses are direct clients.
        "QRUNTIME_FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    with server_on(
        request.param, tmp_path_factory, "limits", request=request, extra_env=env
    ) as server:
        yield server


def own_address() -> str:
    """A loopback address no other test in this module talks from."""
    return f"127.0.0.{next(_addresses)}"


def client_from(server: ServerProcess, address: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, headers=headers, transport=transport, timeout=30)


def raw_request(server: ServerProcess, head: str, body_chunks=(), *, address: str) -> bytes:
    """Send ``head`` and then as much of the body as the server takes; return its answer.

    The server may answer (and close) before the body is sent: sending then fails, and the
    answer is read anyway.
    """
    with socket.create_connection(
        ("127.0.0.1", server.port), timeout=30, source_address=(address, 0)
    ) as sock:
        sock.sendall(head.encode("latin-1"))
        with contextlib.suppress(OSError):
            for chunk in body_chunks:
                sock.sendall(chunk)
        answer = b""
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                answer += data
    return answer


def head_of(method: str, path: str, **headers: str) -> str:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
        sent += size
    yield b"0\r\n\r\n"


# --- bodies: the token first ---------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer qrt_not-a-real-token"])
def test_a_big_body_without_a_valid_token_is_refused_before_it_is_read(server, authorization):
    headers = {"Content-Type": "application/json", "Content-Length": str(120 * MiB)}
    if authorization:
        headers["Authorization"] = authorization
    # The body is never sent: a server that waited for it would not answer at all.
    answer = raw_request(server, head_of("POST", "/programs", **headers), address=own_address())

    assert status_of(answer) == 401, answer[:300]
    assert b"QRUNTIME_MAX_ANONYMOUS_BODY_BYTES" in answer
    assert b"connection: close" in answer.lower()


def test_a_chunked_body_without_a_token_is_cut_off_past_a_few_kib(server):
    head = head_of(
        "POST", "/jobs", **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    answer = raw_request(server, head, chunked(20 * MiB), address=own_address())

    assert status_of(answer) == 401, answer[:300]
    assert f"over {ANONYMOUS_LIMIT} bytes".encode() in answer


def test_anonymous_floods_take_neither_memory_nor_the_health_check(server):
    """Six 120 MB bodies at once, declared or chunked: refused before they are read."""
    before = psutil.Process(server.process.pid).memory_info().rss
    answers: list[bytes] = []

    def flood(declared: bool) -> None:
        headers = {"Content-Type": "application/json"}
        if declared:
            headers["Content-Length"] = str(120 * MiB)
            body = (b"x" * MiB for _ in range(120))
        else:
            headers["Transfer-Encoding"] = "chunked"
            body = chunked(120 * MiB, MiB)
        answers.append(
            raw_request(
                server, head_of("POST", "/programs", **headers), body, address=own_address()
            )
        )

    threads = [threading.Thread(target=flood, args=(k % 2 == 0,)) for k in range(6)]
    for thread in threads:
        thread.start()
    health = httpx.get(f"{server.url}/health", timeout=30)
    for thread in threads:
        thread.join(120)

    assert health.status_code == 200
    assert [status_of(a) for a in answers] == [401] * 6
    grown = psutil.Process(server.process.pid).memory_info().rss - before
    assert grown < 64 * MiB, f"the server grew by {grown / MiB:.0f} MiB"


def test_a_valid_token_may_send_a_big_body_up_to_the_servers_limit(server):
    with clients_for(server) as clients:
        admin = clients.admin
        big = {"data": "x" * (2 * MiB), "metadata": {}}
        judged = assert_error(admin.post("/programs", json=big), 413, "too_large")
        assert "QRUNTIME_MAX_SOURCE_BYTES" in judged["message"], judged  # read and parsed
        too_big = raw_request(
            server,
            head_of(
                "POST",
                "/programs",
                **{
                    "Authorization": f"Bearer {server.admin_token}",
                    "Content-Type": "application/json",
                    "Content-Length": str(4 * 1024 * MiB),
                },
            ),
            address="127.0.0.1",
        )
    assert status_of(too_big) == 413, too_big[:300]


# --- failed authentications --------------------------------------------------------------------


def test_an_address_that_keeps_failing_to_authenticate_is_refused_for_a_while(server):
    address = own_address()
    with clients_for(server) as clients:
        good = clients.user(f"g{uuid.uuid4().hex[:8]}").headers["Authorization"].split()[1]
    with (
        client_from(server, address, "qrt_wrong") as wrong,
        client_from(server, address, good) as right,
    ):
        # A request with a body has its token looked up by the body gate and by the route:
        # it still counts one failure, so exactly MAX_FAILED_AUTHS requests get their 401.
        for attempt in range(MAX_FAILED_AUTHS):
            if attempt % 2:
                assert_error(wrong.get("/jobs"), 401, "not_authenticated")
            else:
                answer = wrong.post("/jobs", json={"program_id": "x", "backend": "y"})
                assert_error(answer, 401, "not_authenticated")
        refused = assert_error(wrong.get("/jobs"), 429, "quota_exceeded")
        assert "QRUNTIME_MAX_FAILED_AUTHS_PER_MINUTE" in refused["message"], refused
        assert_error(wrong.post("/jobs", json={"program_id": "x"}), 429, "quota_exceeded")
        # A right token from that address is never refused for the failures.
        assert right.get("/jobs").status_code == 200
        assert_error(right.post("/jobs", json={"program_id": "x"}), 404, "not_found")
        sign_in = right.post("/ui/sign-in", data={"token": good}, headers={"Origin": server.url})
        assert sign_in.status_code == 303, sign_in.text
    with client_from(server, own_address(), "qrt_wrong") as elsewhere:
        assert_error(elsewhere.get("/jobs"), 401, "not_authenticated")


def test_behind_a_trusted_proxy_failures_count_per_forwarded_client(server):
    """127.0.0.1 is the trusted proxy (QRUNTIME_FORWARDED_ALLOW_IPS): its X-Forwarded-For names
    the client; from any other address the header is ignored, so it cannot dodge the limit."""
    with clients_for(server) as clients:
        good = clients.user(f"p{uuid.uuid4().hex[:8]}").headers["Authorization"].split()[1]
    guesser, neighbour = f"203.0.113.{next(_addresses)}", f"203.0.113.{next(_addresses)}"

    def via_proxy(client: str, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": client}
        return httpx.get(f"{server.url}/jobs", headers=headers, timeout=30)

    for _ in range(MAX_FAILED_AUTHS):
        assert_error(via_proxy(guesser, "qrt_wrong"), 401, "not_authenticated")
    refused = assert_error(via_proxy(guesser, "qrt_wrong"), 429, "quota_exceeded")
    assert guesser in refused["message"], refused
    assert via_proxy(guesser, good).status_code == 200
    assert_error(via_proxy(neighbour, "qrt_wrong"), 401, "not_authenticated")
    assert via_proxy(neighbour, good).status_code == 200
    with client_from(server, own_address(), "qrt_wrong") as direct:
        for n in range(MAX_FAILED_AUTHS):
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert_error(direct.get("/jobs", headers=spoofed), 401, "not_authenticated")
        spoofed = {"X-Forwarded-For": "198.51.100.200"}
        assert_error(direct.get("/jobs", headers=spoofed), 429, "quota_exceeded")


# --- event streams -----------------------------------------------------------------------------


@contextlib.contextmanager
def open_stream(client: httpx.Client, job_id: str) -> Iterator[httpx.Response]:
    with connect_sse(client, "GET", f"/jobs/{job_id}/stream") as source:
        yield source.response


def streams_in_health(server: ServerProcess) -> dict:
    return server.health()["streams"]


def test_event_streams_are_capped_per_user_and_in_total(server):
    with clients_for(server) as clients, contextlib.ExitStack() as streams:
        alice, bob = (
            clients.user(f"a{uuid.uuid4().hex[:8]}"),
            clients.user(f"b{uuid.uuid4().hex[:8]}"),
        )
        jobs = {}
        for name, client in (("alice", alice), ("bob", bob)):
            program = upload(client, "sleeps_forever", name="sleeper")["id"]
            jobs[name] = submit(client, program, {"seconds": 120})["id"]
        assert streams_in_health(server)["open"] == 0
        for _ in range(MAX_STREAMS_PER_USER):
            assert streams.enter_context(open_stream(alice, jobs["alice"])).status_code == 200
        per_user = alice.get(f"/jobs/{jobs['alice']}/stream")
        error = assert_error(per_user, 429, "quota_exceeded")
        assert "QRUNTIME_MAX_STREAMS_PER_USER" in error["message"], error
        for _ in range(MAX_STREAMS - MAX_STREAMS_PER_USER):
            assert streams.enter_context(open_stream(bob, jobs["bob"])).status_code == 200
        total = assert_error(bob.get(f"/jobs/{jobs['bob']}/stream"), 429, "quota_exceeded")
        assert "QRUNTIME_MAX_STREAMS " in total["message"], total
        assert streams_in_health(server) == {
            "open": MAX_STREAMS,
            "most_open_by_one_user": MAX_STREAMS_PER_USER,
            "max": MAX_STREAMS,
            "max_per_user": MAX_STREAMS_PER_USER,
        }
        streams.close()  # the client hangs up: the slots come back
        wait_for(lambda: streams_in_health(server)["open"] == 0)
        with open_stream(bob, jobs["bob"]) as again:
            assert again.status_code == 200
        for name, client in (("alice", alice), ("bob", bob)):
            client.post(f"/jobs/{jobs[name]}/cancel")
            wait_for_job(client, jobs[name], server=server)


def wait_for(check, timeout: float = 30.0) -> None:
    wait_until(check, timeout=timeout, what="the stream slots to come back")
