"""``/api/v1/sessions``: ``Session(...)`` and ``Batch(...)`` as qruntime sessions and batches.

The client opens one (``POST``, mode ``dedicated`` or ``batch``), submits jobs naming it,
reads it (``GET``), closes it (``PATCH`` ``accepting_jobs: false``) and cancels it
(``DELETE .../close``). The rules are the native service's (service/sessions.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import iso
from qruntime.compat.ibm_runtime import names
from qruntime.compat.ibm_runtime.deps import TAGS, CallerV1
from qruntime.domain.errors import InvalidStateError, NotFoundError
from qruntime.domain.instances import instance_crn
from qruntime.domain.sessions import MAX_MAX_TIME, SessionMode
from qruntime.service.container import Services
from qruntime.storage.records import StoredJobGroup

router = APIRouter(
    prefix="/sessions", tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute
)
SessionId = Annotated[str, Path(max_length=100)]
#: The client's mode words: ``Session`` asks for ``dedicated``.
MODES = {"dedicated": SessionMode.SESSION, "batch": SessionMode.BATCH}
WORDS = {mode: word for word, mode in MODES.items()}


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = Field(max_length=100)
    instance: str | None = Field(None, max_length=200)
    mode: Literal["dedicated", "batch"] = "dedicated"
    max_ttl: int | None = Field(None, ge=1, le=MAX_MAX_TIME, description="max_time (s)")


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accepting_jobs: bool


@router.post("", responses=error_responses(400, 401, 404, 422))
def create_session(body: SessionCreate, caller: CallerV1, services: ServicesDep) -> dict[str, Any]:
    if body.instance is not None and body.instance != instance_crn(caller.user_id):
        raise NotFoundError("instance", body.instance)
    group = services.sessions.open(
        caller,
        mode=MODES[body.mode],
        backend=names.to_native(services.registry, body.backend),
        max_time=body.max_ttl,
    )
    return session_json(services, group)


@router.get("/{session_id}", responses=error_responses(401, 404, 422))
def get_session(session_id: SessionId, caller: CallerV1, services: ServicesDep) -> dict[str, Any]:
    return session_json(services, services.sessions.get(caller, session_id))


@router.patch("/{session_id}", status_code=204, responses=error_responses(401, 404, 409, 422))
def update_session(
    session_id: SessionId, body: SessionUpdate, caller: CallerV1, services: ServicesDep
) -> Response:
    """``accepting_jobs: false`` closes it; ``true`` is accepted only while it is open."""
    if not body.accepting_jobs:
        services.sessions.close(caller, session_id)
        return Response(status_code=204)
    group = services.sessions.get(caller, session_id)
    if group.closed_at is not None or group.cancelled_at is not None:
        raise InvalidStateError(f"{group.mode} {session_id!r} is closed and cannot reopen")
    return Response(status_code=204)


@router.delete("/{session_id}/close", status_code=204, responses=error_responses(401, 404, 422))
async def cancel_session(
    session_id: SessionId, caller: CallerV1, services: ServicesDep
) -> Response:
    """What ``session.cancel()`` calls: its queued and running jobs are cancelled."""
    await services.sessions.cancel(caller, session_id)
    return Response(status_code=204)


def session_json(services: Services, group: StoredJobGroup) -> dict[str, Any]:
    """The fields ``Session.details()`` and ``status()`` read."""
    now = services.sessions.now()
    state = group.clock.state(now)
    return {
        "id": group.id,
        "backend_name": names.to_dialect(group.backend),
        "mode": WORDS[group.mode],
        "state": state.value,
        "accepting_jobs": group.clock.accepting_jobs(now),
        "max_ttl": group.max_time,
        "interactive_ttl": None,
        "active_ttl": group.max_time,
        "started_at": iso(group.created_at),
        "activated_at": iso(group.activated_at),
        "closed_at": iso(group.closed_at or group.cancelled_at),
        "last_job_started": iso(group.last_job_started),
        "last_job_completed": iso(group.last_job_ended),
        "elapsed_time": group.usage_seconds(now),
        "user_id": group.owner_name,
        "timestamps": [],
    }
