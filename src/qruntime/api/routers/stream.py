"""``GET /jobs/{id}/stream``: server-sent events that resume after ``Last-Event-ID``."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.domain.errors import Problem, ValidationFailed
from qruntime.service.container import Services
from qruntime.service.job_stream import (
    FirstRead,
    StreamFinal,
    StreamItem,
    StreamPing,
    StreamStatus,
    follow_job,
)
from qruntime.service.principal import Principal
from qruntime.storage import StoredJob

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=AUTHENTICATED)


def visible_job(job_id: str, caller: CurrentUser, services: ServicesDep) -> StoredJob:
    """Checked before the response starts, so an unknown job is a plain 404."""
    return services.jobs.get(caller, job_id)


def resume_point(
    since: Annotated[
        int | None, Query(ge=0, le=SQL_INT_MAX, description="Replay interim results after N.")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> int:
    """``Last-Event-ID`` (sent by reconnecting clients) wins over ``?since``."""
    if last_event_id is not None and last_event_id.strip():
        value = last_event_seq(last_event_id)
        if value is None:
            raise ValidationFailed(
                Problem(
                    "Last-Event-ID", f"must be an interim sequence number, got {last_event_id!r}"
                )
            )
        return value
    return since or 0


def last_event_seq(header: str) -> int | None:
    """The sequence number a ``Last-Event-ID`` names; None when it names none."""
    try:
        value = int(header)
    except ValueError:
        return None
    return value if 0 <= value <= SQL_INT_MAX else None


#: What the OpenAPI document says each event looks like.
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


@router.get(
    "/{job_id}/stream",
    response_class=StreamingResponse,  # no media type: the OpenAPI content is declared below
    responses={
        200: {"content": {"text/event-stream": {"itemSchema": EVENT_SCHEMA}}},
        **error_responses(400, 401, 404, 422, 429, json_route=False),
    },
)
async def stream_job(
    job: Annotated[StoredJob, Depends(visible_job)],
    since: Annotated[int, Depends(resume_point)],
    caller: CurrentUser,
    services: ServicesDep,
) -> StreamingResponse:
    # No docstring: it would become the operation's description in the OpenAPI document.
    # Served here only with ``thin_endpoints`` off; api/thin_stream.py answers it otherwise.
    return event_stream(services, caller, job, since)


def event_stream(
    services: Services,
    caller: Principal,
    job: StoredJob,
    since: int,
    first: FirstRead | None = None,
) -> SlotStreamingResponse:
    """The response that follows ``job``; raises TooManyStreamsError (429) past a cap."""
    release = services.streams.acquire(caller.user_id)  # 429 past a cap, before it starts
    ping = services.settings.stream_ping_seconds
    items = follow_job(
        services.db, services.hub, job.id, since=since, ping_seconds=ping, first=first
    )
    return SlotStreamingResponse(
        _encoded(items),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class SlotStreamingResponse(StreamingResponse):
    """Gives its stream slot back when the response ends, however it ends (disconnects too)."""

    def __init__(self, content: Any, release: Callable[[], None], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _encoded(batches: AsyncIterator[list[StreamItem]]) -> AsyncIterator[str]:
    """Each read of the database as one write: the events are formatted here, not one by one
    through FastAPI's per-event machinery, which cost more than storing them (performance.md)."""
    async for batch in batches:
        yield "".join(_event(item) for item in batch)


def _event(item: StreamItem) -> str:
    if isinstance(item, StreamPing):
        return ": ping\n\n"
    if isinstance(item, StreamStatus):
        return _sse("status", json.dumps({"status": item.status, "reason": item.reason}))
    if isinstance(item, StreamFinal):
        payload = {
            "status": item.status,
            "reason": item.reason,
            "error_message": item.error_message,
        }
        if item.result is not None:
            payload["result"] = item.result
        return _sse("final", json.dumps(payload))
    return _sse("interim", f'{{"seq": {item.seq}, "data": {item.data}}}', event_id=item.seq)


#: Characters that readers splitting lines as ``str.splitlines()`` does (httpx's among them) take
#: for line breaks; in JSON text they stand only inside strings, where their escapes are equal.
_UNICODE_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_SSE_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _sse(event: str, data: str, *, event_id: int | None = None) -> str:
    """One server-sent event of JSON ``data``; a line break in it (SSE's: CR, LF, CRLF) continues
    it on a new data line, and no other character can end a line for any reader."""
    head = f"id: {event_id}\nevent: {event}\n" if event_id is not None else f"event: {event}\n"
    lines = _SSE_LINE_BREAK.split(data.translate(_UNICODE_LINE_BREAKS))
    return head + "".join(f"data: {line}\n" for line in lines) + "\n"
