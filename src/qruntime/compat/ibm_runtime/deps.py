"""Who is calling, as today's qiskit-ibm-runtime says it: ``Authorization: Bearer <access
token>`` (from ``/identity/token``) and ``Service-CRN: <the caller's instance>``."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qruntime.api.deps import ServicesDep
from qruntime.domain.errors import NotAuthenticatedError, NotFoundError
from qruntime.domain.instances import instance_crn
from qruntime.service.principal import Principal
from qruntime.web.credentials import authenticated

#: The OpenAPI tag of every route of this dialect.
TAGS: list[str | Enum] = ["qiskit-ibm-runtime"]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="IBMAccessToken",
    description="An access token from POST /identity/token (or a qruntime token).",
)


def caller_v1(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    service_crn: Annotated[str | None, Header(alias="Service-CRN", max_length=200)] = None,
) -> Principal:
    """The caller, acting in its own instance; any other instance does not exist for it."""
    if credentials is None:
        scheme = request.headers.get("authorization", "").partition(" ")[0].lower()
        if scheme == "apikey":  # what the client falls back to when the exchange failed
            raise NotAuthenticatedError(
                "the client could not exchange its token for an access token: set the "
                "environment variable IAM_URL to this server's URL (docs/compat.md)"
            )
        return services.users.authenticate(None)
    caller = authenticated(request, services, "bearer", credentials.credentials)
    if service_crn is not None and service_crn != instance_crn(caller.user_id):
        raise NotFoundError("instance", service_crn)
    return caller


CallerV1 = Annotated[Principal, Depends(caller_v1)]
