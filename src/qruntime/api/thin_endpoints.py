"""``POST /jobs`` and ``GET /jobs/{id}/stream``, the two requests of every job, answered before
the router: no route matching over every route, no dependency injection, one thread hop.

Pure ASGI, inside the URL text guard and the body gate. Only a well-formed request of a known
caller is answered here; any other (no token, a cookie on POST, a body that is not a valid
``JobCreate``, an unknown job, a full stream cap) goes on to its FastAPI route, which refuses
it as it always did, reading the body this layer already read. The routes stay declared, so
the OpenAPI document is unchanged.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from qruntime.api import thin_stream, thin_submit
from qruntime.service.container import Services

_JOBS = "/jobs"
_STREAM_PREFIX, _STREAM_SUFFIX = "/jobs/", "/stream"


class ThinEndpoints:
    def __init__(self, app: ASGIApp, *, services: Services):
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            onward: Receive | None = receive
            path, method = scope["path"], scope["method"]
            if method == "POST" and path == _JOBS:
                onward = await thin_submit.submit(self.services, scope, receive, send)
            elif method == "GET" and path.startswith(_STREAM_PREFIX):
                job_id = path[len(_STREAM_PREFIX) : -len(_STREAM_SUFFIX)]
                if path.endswith(_STREAM_SUFFIX) and job_id and "/" not in job_id:
                    onward = await thin_stream.stream(self.services, scope, receive, send, job_id)
            if onward is None:  # answered here
                return
            receive = onward
        await self.app(scope, receive, send)
