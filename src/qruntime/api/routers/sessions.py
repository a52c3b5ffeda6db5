"""``/sessions``: a user's sessions and batches, their jobs, closing and cancelling them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.api.session_schemas import SessionCreate, SessionPublic, SessionsPublic

router = APIRouter(
    prefix="/sessions", tags=["sessions"], responses=AUTHENTICATED, route_class=CheckedJsonRoute
)


@router.post("", status_code=201, responses=error_responses(400))
def open_session(body: SessionCreate, caller: CurrentUser, services: ServicesDep) -> SessionPublic:
    """Jobs submitted with its ``session_id`` join it."""
    group = services.sessions.open(
        caller, mode=body.mode, backend=body.backend, max_time=body.max_time
    )
    return SessionPublic.of(group, services.sessions.now())


@router.get("")
def list_sessions(
    caller: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
) -> SessionsPublic:
    groups, total = services.sessions.list(caller, limit=limit, offset=offset)
    now = services.sessions.now()
    return SessionsPublic(sessions=[SessionPublic.of(g, now) for g in groups], total=total)


@router.get("/{session_id}", responses=error_responses(404))
def get_session(session_id: str, caller: CurrentUser, services: ServicesDep) -> SessionPublic:
    """The session with its jobs, in submission order."""
    group = services.sessions.get(caller, session_id)
    jobs = services.sessions.jobs(caller, session_id)
    return SessionPublic.of(group, services.sessions.now(), jobs)


@router.post("/{session_id}/close", responses=error_responses(404))
def close_session(session_id: str, caller: CurrentUser, services: ServicesDep) -> SessionPublic:
    """No new jobs; its queued and running jobs still run."""
    group = services.sessions.close(caller, session_id)
    return SessionPublic.of(group, services.sessions.now())


@router.post("/{session_id}/cancel", responses=error_responses(404))
async def cancel_session(
    session_id: str, caller: CurrentUser, services: ServicesDep
) -> SessionPublic:
    """No new jobs, and its queued and running jobs are cancelled."""
    group = await services.sessions.cancel(caller, session_id)
    return SessionPublic.of(group, await run_in_threadpool(services.sessions.now))
