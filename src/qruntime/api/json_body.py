"""JSON request bodies: parsed off the event loop when large, refused when their text is invalid.

A router built with ``route_class=CheckedJsonRoute`` parses each JSON body once, in a worker
thread when it is over :data:`OFF_LOOP_BYTES` (a 64 MiB body takes the loop's thread for
about half a second), and answers 422 naming the field when a string in it is not valid
Unicode (a lone surrogate), before any handler or service sees it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from qruntime.api.errors import error_response
from qruntime.domain.errors import Problem
from qruntime.domain.text import json_text_problem, may_hold_surrogates

#: Bodies above this are parsed in a worker thread.
OFF_LOOP_BYTES = 256 * 1024
_UNSET = object()


class CheckedJsonRequest(Request):
    """Parses the body as strict UTF-8 JSON once; keeps the first invalid string it holds."""

    text_problem: Problem | None = None
    _parsed: Any = _UNSET

    async def json(self) -> Any:
        if self._parsed is _UNSET:
            body = await self.body()
            if len(body) > OFF_LOOP_BYTES:
                self._parsed = await run_in_threadpool(parse_json, body)
            else:
                self._parsed = parse_json(body)
        value, error, self.text_problem = self._parsed
        if error is not None:
            raise error
        return value


def parse_json(body: bytes) -> tuple[Any, Exception | None, Problem | None]:
    """(value, the error to raise instead, the first invalid string); a body nested too deeply
    raises RecursionError, which FastAPI answers with 400 as before."""
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        doc = body.decode("utf-8", "replace")
        return None, json.JSONDecodeError(f"not valid UTF-8 ({exc.reason})", doc, exc.start), None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, exc, None
    except RecursionError as exc:
        return None, exc, None
    problem = json_text_problem(value, "body") if may_hold_surrogates(text) else None
    return value, None, problem


def is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class CheckedJsonRoute(APIRoute):
    """An API route whose JSON body is checked by :class:`CheckedJsonRequest` first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        has_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            # No content type: a route that takes it as JSON anyway (strict_content_type=False)
            # gets the same check; on a strict one FastAPI refuses the body regardless.
            if not has_body or not (is_json(request) or "content-type" not in request.headers):
                return await handler(request)
            request = CheckedJsonRequest(request.scope, request.receive, request._send)
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                await request.json()  # FastAPI reports these itself, from the same parse
            problem = request.text_problem
            if problem is not None:
                message = f"invalid request: {problem}"
                return error_response(422, "bad_request", message, [problem])
            return await handler(request)

        return checked
