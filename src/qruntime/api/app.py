"""The FastAPI application factory: no engine or process is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qruntime import __version__
from qruntime.api.errors import error_response, install_error_handlers
from qruntime.api.routers import backends, health, jobs, programs, stream, users
from qruntime.compat import install_compat
from qruntime.service.container import Services
from qruntime.settings import Settings
from qruntime.web.mount import install_dashboard

#: Room for base64 and JSON framing around the largest allowed source or inputs.
_BODY_OVERHEAD = 1024 * 1024


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the app; the database is migrated and the scheduler started in its lifespan."""
    settings = settings or Settings()
    services = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="qruntime",
        version=__version__,
        description="Upload quantum runtime programs, run them as jobs, follow their results.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    body_limit = 2 * max(settings.max_inputs_bytes, settings.max_source_bytes) + _BODY_OVERHEAD
    app.add_middleware(BodySizeLimit, limit=body_limit)
    for module in (health, programs, jobs, stream, backends, users):
        app.include_router(module.router)
    install_compat(app)
    install_dashboard(app)
    return app


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes, declared or chunked; pure ASGI, so streams pass."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            message = f"request body of {int(length)} bytes is over the limit of {self.limit}"
            await error_response(413, "too_large", message)(scope, receive, send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    text = f"request body is over the limit of {self.limit} bytes"
                    await error_response(413, "too_large", text)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 is already out; drop whatever the app says after it
                await send(message)

        await self.app(scope, counting_receive, guarded_send)
