"""Session pages: the caller's sessions and batches, and one with its jobs in order."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from qruntime.web.auth import PageCaller
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import PageRoute
from qruntime.web.templating import render

router = APIRouter(prefix="/ui/sessions", route_class=PageRoute, include_in_schema=False)
#: Sessions per page; the newest first.
PAGE_SIZE = 50


@router.get("")
def sessions_page(
    request: Request, caller: PageCaller, services: ServicesDep, page: int = 0
) -> Response:
    page = max(page, 0)
    groups, total = services.sessions.list(caller, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    context = {
        "groups": groups,
        "total": total,
        "now": services.sessions.now(),
        "page": page,
        "page_size": PAGE_SIZE,
    }
    return render(request, "sessions.html", context)


@router.get("/{session_id}")
def session_page(
    request: Request, session_id: str, caller: PageCaller, services: ServicesDep
) -> Response:
    group = services.sessions.get(caller, session_id)
    context = {
        "group": group,
        "jobs": services.sessions.jobs(caller, session_id),
        "now": services.sessions.now(),
    }
    return render(request, "job_session.html", context)
