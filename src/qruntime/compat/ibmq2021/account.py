"""How the 2021 client signs in: the version check, the token login, the caller's URLs and the
one hub/group/project everyone belongs to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from qruntime import __version__
from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import iso
from qruntime.compat.common.urls import base_url, websocket_base_url
from qruntime.compat.ibmq2021.deps import GROUP, HUB, PROJECT, TAGS, Caller2021
from qruntime.web.credentials import client_address

router = APIRouter(tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute)
#: Seconds the 2021 service said an access token lives; qruntime's tokens live until revoked.
ACCESS_TOKEN_TTL = 1209600


class LoginWithToken(BaseModel):
    model_config = ConfigDict(extra="ignore")

    apiToken: str = Field(max_length=512, description="QE_TOKEN: a qruntime token.")


@router.get("/version")
def version() -> dict[str, Any]:
    """The client refuses servers whose answer lacks ``api-auth`` (IBM's authentication API)."""
    return {"new_api": True, "api-auth": __version__, "api": f"qruntime {__version__}"}


@router.post("/users/loginWithToken", responses=error_responses(400, 401, 413, 422))
def login_with_token(
    body: LoginWithToken, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """The access token is the qruntime token itself: revoking it signs the client out at once.
    A wrong one counts towards the address's limit on failed authentications."""
    caller = services.users.authenticate(body.apiToken, source=client_address(request))
    user = services.users.me(caller)
    return {
        "id": body.apiToken,
        "ttl": ACCESS_TOKEN_TTL,
        "created": iso(user.created_at),
        "userId": user.name,
    }


@router.get("/users/me", responses=error_responses(401, 422))
def me(request: Request, caller: Caller2021, services: ServicesDep) -> dict[str, Any]:
    user = services.users.me(caller)
    api = f"{base_url(request)}/api"
    return {
        "id": user.name,
        "username": user.name,
        "role": user.role,
        "urls": {
            "http": api,
            "ws": f"{websocket_base_url(request)}/api/ws",
            "services": {"runtime": f"{api}/runtime"},
        },
    }


@router.get("/Network", responses=error_responses(401, 422))
def network(caller: Caller2021) -> list[dict[str, Any]]:
    project = {"name": PROJECT, "isDefault": True}
    return [{"name": HUB, "groups": {GROUP: {"name": GROUP, "projects": {PROJECT: project}}}}]


@router.post("/runtime/logout", status_code=204, responses=error_responses(401, 422))
def logout(caller: Caller2021) -> Response:
    """The 2021 service dropped its cached rights here; qruntime caches none."""
    return Response(status_code=204)
