"""What the thin endpoints answer themselves and what they hand to the routes: the credential
and resume point they read from a request, and the body they give the route back unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qruntime.api.thin_caller import bearer_token, credential, known_caller
from qruntime.api.thin_stream import resume_point
from qruntime.api.thin_submit import read_body, replaying
from qruntime.domain.users import Role
from qruntime.service.principal import Principal
from qruntime.web.credentials import GATE_PRINCIPAL


def scope(method: str = "GET", query: bytes = b"", **headers: str) -> dict[str, Any]:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": method, "headers": raw, "query_string": query}


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),  # FastAPI's HTTPBearer strips the credentials
        ("Bearer", None),
        ("Basic abc", None),
        ("", None),
        ("abc", None),
    ],
)
def test_the_bearer_token_is_the_one_fastapi_reads(authorization: str, token: str | None) -> None:
    assert bearer_token(scope(authorization=authorization)) == token


def test_the_first_authorization_header_counts_as_for_fastapi() -> None:
    request = scope()
    request["headers"] = [(b"authorization", b"Basic x"), (b"authorization", b"Bearer y")]
    assert bearer_token(request) is None


def test_the_cookie_is_a_credential_for_get_only() -> None:
    assert credential(scope("GET", cookie="qruntime_session=tok")) == ("cookie", "tok")
    assert credential(scope("HEAD", cookie="qruntime_session=tok")) == ("cookie", "tok")
    assert credential(scope("POST", cookie="qruntime_session=tok")) is None
    assert credential(scope("GET", cookie="other=tok")) is None
    both = scope("GET", cookie="qruntime_session=tok", authorization="Bearer abc")
    assert credential(both) == ("bearer", "abc")


class Users:
    """The token cache's answer only: no database behind it."""

    def __init__(self, cached: Principal | None):
        self._cached = cached

    def cached(self, token: str) -> Principal | None:
        return self._cached


def test_the_gates_caller_is_taken_only_for_the_same_kind_of_credential() -> None:
    gate, cache = Principal(1, "gate", Role.USER), Principal(2, "cache", Role.USER)
    request = scope() | {"state": {GATE_PRINCIPAL: ("bearer", gate)}}
    assert known_caller(request, Users(cache), "bearer", "t") is gate  # type: ignore[arg-type]
    assert known_caller(request, Users(cache), "cookie", "t") is cache  # type: ignore[arg-type]
    assert known_caller(scope(), Users(None), "bearer", "t") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "last_event_id", "since"),
    [
        (b"", None, 0),
        (b"since=7", None, 7),
        (b"since=007", None, 7),
        (b"since=7", "9", 9),  # Last-Event-ID wins
        (b"since=7", "  ", 7),  # a blank one does not count
        (b"", "+3", 3),  # what int() takes, as the route
        (b"since=9223372036854775807", None, 2**63 - 1),
        # The route refuses these (400/422) or reads them its own way: not answered here.
        (b"since=9223372036854775808", None, None),
        (b"since=-1", None, None),
        (b"since=", None, None),
        (b"since=1&since=2", None, None),
        (b"other=1", None, None),
        (b"", "abc", None),
        (b"", "-1", None),
        (b"", "9223372036854775808", None),
        (b"since=x", "3", None),  # the route checks ?since even when Last-Event-ID wins
    ],
)
def test_the_resume_point_is_the_routes_or_left_to_it(
    query: bytes, last_event_id: str | None, since: int | None
) -> None:
    headers = {} if last_event_id is None else {"last_event_id": last_event_id}
    assert resume_point(scope("GET", query, **headers)) == since


def test_two_last_event_ids_are_left_to_the_route() -> None:
    request = scope()
    request["headers"] = [(b"last-event-id", b"1"), (b"last-event-id", b"2")]
    assert resume_point(request) is None


def test_the_route_reads_the_body_again_as_it_was_sent() -> None:
    """Chunks, then what the client sends after (a disconnect), in order."""
    sent = [
        {"type": "http.request", "body": b'{"a"', "more_body": True},
        {"type": "http.request", "body": b": 1}", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def run() -> tuple[bytes | None, list[dict[str, Any]]]:
        queue = list(sent)

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        messages, body = await read_body(receive)
        again = replaying(messages, receive)
        return body, [await again() for _ in sent]

    body, replayed = asyncio.run(run())
    assert body == b'{"a": 1}'
    assert replayed == sent


def test_a_client_gone_before_the_end_of_its_body_has_none() -> None:
    async def run() -> bytes | None:
        queue = [{"type": "http.request", "body": b"{", "more_body": True}]
        queue.append({"type": "http.disconnect"})

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        return (await read_body(receive))[1]

    assert asyncio.run(run()) is None
