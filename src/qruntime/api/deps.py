"""Dependencies shared by the routers: the wired services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qruntime.domain.errors import NotAuthenticatedError
from qruntime.service.container import Services
from qruntime.service.principal import Principal
from qruntime.web.cookie import SESSION_COOKIE
from qruntime.web.credentials import authenticated

_bearer = HTTPBearer(auto_error=False, description="A token from `qruntime admin create-user`.")

#: The only methods for which the API takes the cookie instead of a bearer token: a browser
#: (EventSource, fetch) can read with it, but no page can make the JSON API change anything.
COOKIE_METHODS = frozenset({"GET", "HEAD"})


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is not None:
        return authenticated(request, services, "bearer", credentials.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and request.method in COOKIE_METHODS:
        return authenticated(request, services, "cookie", cookie)
    if cookie:
        raise NotAuthenticatedError(
            f"the dashboard's session cookie is accepted for GET and HEAD only; "
            f"{request.method} needs 'Authorization: Bearer <token>'"
        )
    return services.users.authenticate(None)


CurrentUser = Annotated[Principal, Depends(current_principal)]
