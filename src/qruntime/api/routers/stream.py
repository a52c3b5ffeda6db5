"""``GET /jobs/{id}/stream``: server-sent events that resume after ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.domain.errors import Problem, ValidationFailed
from qruntime.service.job_stream import StreamFinal, StreamPing, StreamStatus, follow_job
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
        try:
            value = int(last_event_id)
        except ValueError:
            value = -1
        if not 0 <= value <= SQL_INT_MAX:
            raise ValidationFailed(
                Problem(
                    "Last-Event-ID", f"must be an interim sequence number, got {last_event_id!r}"
                )
            )
        return value
    return since or 0


@router.get(
    "/{job_id}/stream",
    response_class=EventSourceResponse,
    responses=error_responses(400, 401, 404, 422, json_route=False),
)
async def stream_job(
    job: Annotated[StoredJob, Depends(visible_job)],
    since: Annotated[int, Depends(resume_point)],
    services: ServicesDep,
) -> AsyncIterator[ServerSentEvent]:
    ping = services.settings.stream_ping_seconds
    async for item in follow_job(services.db, services.hub, job.id, since=since, ping_seconds=ping):
        if isinstance(item, StreamPing):
            yield ServerSentEvent(comment="ping")
        elif isinstance(item, StreamStatus):
            payload = {"status": item.status, "reason": item.reason}
            yield ServerSentEvent(event="status", raw_data=json.dumps(payload))
        elif isinstance(item, StreamFinal):
            payload = {
                "status": item.status,
                "reason": item.reason,
                "error_message": item.error_message,
            }
            if item.result is not None:
                payload["result"] = item.result
            yield ServerSentEvent(event="final", raw_data=json.dumps(payload))
        else:
            data = f'{{"seq": {item.seq}, "data": {item.data}}}'
            yield ServerSentEvent(event="interim", id=str(item.seq), raw_data=data)
