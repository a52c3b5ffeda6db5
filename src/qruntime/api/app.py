"""The FastAPI application factory: no engine or process is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from qruntime import __version__
from qruntime.api.body_gate import BodyGate
from qruntime.api.errors import install_error_handlers
from qruntime.api.routers import (
    backends,
    environment,
    health,
    jobs,
    programs,
    sessions,
    stream,
    users,
)
from qruntime.api.thin_endpoints import ThinEndpoints
from qruntime.api.url_text import UrlTextGuard
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
        if services.form_secret is not None:  # every replica's forms accept the others' pages
            app.state.csrf_secret = services.form_secret
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
    if settings.thin_endpoints:  # innermost: behind the gate and the URL text guard
        app.add_middleware(ThinEndpoints, services=services)
    app.add_middleware(
        BodyGate,
        authenticate=services.users.authenticate,
        cached=services.users.cached,
        anonymous_limit=settings.max_anonymous_body_bytes,
        limit=body_limit,
    )
    app.add_middleware(UrlTextGuard)  # outermost: before any token is looked up
    for module in (health, programs, jobs, sessions, stream, backends, environment, users):
        app.include_router(module.router)
    install_compat(app)
    install_dashboard(app)
    return app
