"""Refuse a request whose path or query holds invalid text, before any route or query sees it.

Percent-escapes are decoded strictly: bytes that are not UTF-8 would otherwise become U+FFFD
silently, and a NUL (``%00``) would reach PostgreSQL, which cannot take it. Pure ASGI, so the
JSON API, the dashboard and any compatibility routes get the same check.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from qruntime.api.errors import error_response
from qruntime.domain.errors import Problem
from qruntime.domain.text import text_problem


class UrlTextGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = url_text_problem(scope.get("raw_path") or b"", scope.get("query_string", b""))
            if problem is not None:
                message = f"invalid request: {problem}"
                await error_response(422, "bad_request", message, [problem])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def url_text_problem(raw_path: bytes, query: bytes) -> Problem | None:
    """The first part of the URL whose decoded text breaks the text rule (domain/text.py)."""
    problem = _decoded_problem(raw_path)
    if problem is not None:
        return Problem("path", problem)
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        name_text = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        for part, where in ((name, "query"), (value, f"query.{name_text}")):
            problem = _decoded_problem(part.replace(b"+", b" "))
            if problem is not None:
                return Problem(where, problem)
    return None


def _decoded_problem(raw: bytes) -> str | None:
    if b"%" not in raw and raw.isascii() and b"\x00" not in raw:
        return None
    data = unquote_to_bytes(raw)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not valid UTF-8 once percent-decoded ({exc.reason} at byte {exc.start})"
    return text_problem(text)
