"""``GET /health``: liveness for load balancers and clients waiting for a server to start, and
the details (replicas, executor, sandbox, streams) for admins only.

Anyone gets ``status`` and ``version``: 200 when this replica can serve, 503 when its database
cannot be reached. What the answer says about the machine (hosts, pids, paths, Ray nodes,
how many streams users hold) is for an admin's token: to anyone else it maps the service.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from qruntime import __version__
from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_response, error_responses
from qruntime.api.schemas import Health, HealthPublic, ReplicaPublic, StreamsStatus
from qruntime.domain.errors import NotAuthenticatedError
from qruntime.service.container import Services
from qruntime.web.credentials import authenticated

router = APIRouter(tags=["health"])
log = logging.getLogger("qruntime.server")

DATABASE_DOWN = "the database cannot be reached"


@router.get(
    "/health",
    response_model=None,
    responses={
        200: {
            "model": Health | HealthPublic,
            "description": "`Health` for an admin's token; `HealthPublic` for anyone else.",
        },
        **error_responses(401, 429, 503),
    },
)
def health(request: Request, services: ServicesDep) -> JSONResponse:
    """No token (or a user's): status and version. An admin's token (``Authorization:
    Bearer``, optional, so not a security requirement of the schema): the whole report. A
    wrong token is refused (401), as on every route."""
    try:
        services.db.ping()
        caller = None
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise NotAuthenticatedError("the Authorization header must be 'Bearer <token>'")
            caller = authenticated(request, services, "bearer", token.strip())
        if caller is None or not caller.is_admin:
            return JSONResponse(HealthPublic(status="ok", version=__version__).model_dump())
        return JSONResponse(_details(services).model_dump(mode="json"))
    except SQLAlchemyError as exc:
        log.warning("health check: %s (%s)", DATABASE_DOWN, type(exc).__name__)
        return error_response(503, "unavailable", DATABASE_DOWN)


def _details(services: Services) -> Health:
    return Health(
        status="ok",
        version=__version__,
        database=services.db.dialect,
        sandbox=services.sandbox_report(),
        executor=services.executor_status(),
        streams=StreamsStatus(**services.streams.status()),
        replica=services.replicas.identity.id,
        replicas=[ReplicaPublic.of(replica) for replica in services.replicas.list()],
    )
