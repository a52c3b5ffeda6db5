"""``POST /jobs`` as a thin endpoint (api/thin_endpoints.py): the body gate's caller, the body
parsed and validated as the route does, the submit in one worker thread, the route's answer."""

from __future__ import annotations

from collections import deque

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from qruntime.api.errors import domain_error_response
from qruntime.api.json_body import OFF_LOOP_BYTES, parse_json
from qruntime.api.off_loop import in_thread
from qruntime.api.routers.jobs import submitted
from qruntime.api.schemas import JobCreate, JobPublic
from qruntime.api.thin_caller import bearer_token
from qruntime.domain.errors import QRuntimeError
from qruntime.service.container import Services
from qruntime.web.credentials import GATE_PRINCIPAL


async def submit(services: Services, scope: Scope, receive: Receive, send: Send) -> Receive | None:
    """None once answered; else the receive the route reads the request from."""
    found = scope.get("state", {}).get(GATE_PRINCIPAL)
    if not _is_json(scope) or bearer_token(scope) is None or found is None or found[0] != "bearer":
        return receive  # the route refuses it (or takes the slow way: no gate lookup)
    messages, body = await read_body(receive)
    replay = replaying(messages, receive)
    if not body or len(body) > OFF_LOOP_BYTES:
        return replay  # empty (422), gone, or large enough to be parsed in a thread there
    value, error, problem = parse_json(body)
    if error is not None or problem is not None or not isinstance(value, dict):
        return replay
    try:
        request = JobCreate.model_validate(value)
    except ValidationError:
        return replay
    try:
        job = await in_thread(submitted, services, found[1], request)
    except QRuntimeError as exc:
        response = domain_error_response(exc, "POST", "/jobs")
    else:
        # What FastAPI sends for the route's ``JobPublic``: Pydantic's JSON of it.
        content = JobPublic.of(job).model_dump_json()
        response = Response(content, status_code=201, media_type="application/json")
    await response(scope, replay, send)
    return None


def _is_json(scope: Scope) -> bool:
    """The route's first ``Content-Type`` is ``application/json`` (parameters aside)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


async def read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read, and the whole body (None if the client went away first)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives ``messages`` again, then goes on with ``receive``."""
    pending = deque(messages)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay
