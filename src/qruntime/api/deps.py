"""Dependencies shared by the routers: the wired services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qruntime.service.container import Services
from qruntime.service.principal import Principal

_bearer = HTTPBearer(auto_error=False, description="A token from `qruntime admin create-user`.")


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return services.users.authenticate(credentials.credentials if credentials else None)


CurrentUser = Annotated[Principal, Depends(current_principal)]
