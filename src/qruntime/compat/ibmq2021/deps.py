"""Who is calling, as the 2021 client says it: the ``X-Access-Token`` header on every request
(the token ``loginWithToken`` handed back is the caller's own qruntime token), and the one
hub/group/project every user belongs to."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader

from qruntime.api.deps import ServicesDep
from qruntime.domain.errors import NotAuthenticatedError, NotFoundError
from qruntime.service.principal import Principal
from qruntime.web.credentials import authenticated

HUB, GROUP, PROJECT = "ibm-q", "open", "main"
#: The OpenAPI tag of every route of this dialect.
TAGS: list[str | Enum] = ["ibmq-provider 2021"]
ACCESS_TOKEN_HEADER = "X-Access-Token"

_access_token = APIKeyHeader(
    name=ACCESS_TOKEN_HEADER,
    scheme_name="IBMQAccessToken",
    auto_error=False,
    description="A qruntime token, as qiskit-ibmq-provider sends it after loginWithToken.",
)


def caller_2021(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Depends(_access_token)],
) -> Principal:
    if not token:
        raise NotAuthenticatedError(
            f"missing access token: send '{ACCESS_TOKEN_HEADER}: <token>' (QE_TOKEN)"
        )
    # The body gate's lookup when it made one; each lookup counts towards the address's
    # limit on failed authentications.
    return authenticated(request, services, "access-token", token)


Caller2021 = Annotated[Principal, Depends(caller_2021)]


def project_caller(
    caller: Caller2021,
    hub: Annotated[str, Path(max_length=64)],
    group: Annotated[str, Path(max_length=64)],
    project: Annotated[str, Path(max_length=64)],
) -> Principal:
    """The caller, in ``ibm-q/open/main`` (every user's only project; any other is not found)."""
    if (hub, group, project) != (HUB, GROUP, PROJECT):
        raise NotFoundError("hub/group/project", f"{hub}/{group}/{project}")
    return caller


ProjectCaller = Annotated[Principal, Depends(project_caller)]
#: Where a project's routes live, below ``/api``.
PROJECT_PATH = "/Network/{hub}/Groups/{group}/Projects/{project}"
