"""``GET /jobs/{id}/stream`` as a thin endpoint (api/thin_endpoints.py): for a caller already
checked, the job and its first interim results read in one go (on the loop for a SQLite file,
else in a worker thread), then the route's own response."""

from __future__ import annotations

import re

from starlette.types import Receive, Scope, Send

from qruntime.api.off_loop import in_thread
from qruntime.api.routers.stream import event_stream, last_event_seq
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.api.thin_caller import credential, known_caller
from qruntime.domain.errors import QRuntimeError
from qruntime.service.container import Services
from qruntime.service.job_stream import FirstRead

#: The one query this endpoint answers itself; any other goes to the route, which checks it.
_SINCE = re.compile(rb"since=(\d{1,19})")


async def stream(
    services: Services, scope: Scope, receive: Receive, send: Send, job_id: str
) -> Receive | None:
    """None once answered; else the receive the route reads the request from."""
    since = resume_point(scope)
    found = credential(scope)
    if since is None or found is None:
        return receive
    kind, token = found
    caller = known_caller(scope, services.users, kind, token)
    if caller is None:  # not checked yet: the route checks it, so a wrong one counts once
        return receive
    watch = services.hub.watch(job_id)  # before the read: whatever changes after it wakes us
    try:
        found = services.jobs.get_with_interims_here(caller, job_id, since)
        if found is None:
            found = await in_thread(services.jobs.get_with_interims, caller, job_id, since)
        job, interims = found
        first = FirstRead(watch, job, interims)  # the route reads the job twice, here once
        response = event_stream(services, caller, job, since, first)
    except QRuntimeError:
        return receive  # 401, 404, 429: the route says so, in its words
    await response(scope, receive, send)
    return None


def resume_point(scope: Scope) -> int | None:
    """As the route's ``resume_point``: ``Last-Event-ID`` wins over ``?since``; None where
    the route would refuse either (or where it is not the plain case)."""
    since = 0
    query = scope.get("query_string", b"")
    if query:
        match = _SINCE.fullmatch(query)
        if match is None or (since := int(match[1])) > SQL_INT_MAX:
            return None
    sent = [value for name, value in scope["headers"] if name == b"last-event-id"]
    if len(sent) > 1:
        return None
    if sent and (text := sent[0].decode("latin-1")).strip():
        return last_event_seq(text)
    return since
