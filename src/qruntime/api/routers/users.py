"""``/users`` and ``/tokens``: who the caller is, and the admin's user management."""

from __future__ import annotations

from fastapi import APIRouter, Response

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import (
    TokenIssued,
    TokenPublic,
    TokenRevoke,
    TokensPublic,
    UserCreate,
    UserCreated,
    UserPublic,
    UsersPublic,
)

router = APIRouter(tags=["users"], responses=AUTHENTICATED, route_class=CheckedJsonRoute)


@router.get("/users/me")
def me(caller: CurrentUser, services: ServicesDep) -> UserPublic:
    return UserPublic.of(services.users.me(caller))


@router.post("/users", status_code=201, responses=error_responses(400, 403, 409, 413))
def create_user(body: UserCreate, caller: CurrentUser, services: ServicesDep) -> UserCreated:
    issued = services.users.create_user(caller, body.name, body.role)
    return UserCreated(
        user=UserPublic.of(issued.user), token=issued.token, token_id=issued.token_id
    )


@router.get("/users", responses=error_responses(403))
def list_users(caller: CurrentUser, services: ServicesDep) -> UsersPublic:
    return UsersPublic(users=[UserPublic.of(u) for u in services.users.list_users(caller)])


@router.post("/users/{name}/tokens", status_code=201, responses=error_responses(403, 404))
def issue_token(name: str, caller: CurrentUser, services: ServicesDep) -> TokenIssued:
    issued = services.users.issue_token(caller, name)
    return TokenIssued(token=issued.token, token_id=issued.token_id)


@router.get("/users/{name}/tokens", responses=error_responses(403, 404))
def list_tokens(name: str, caller: CurrentUser, services: ServicesDep) -> TokensPublic:
    return TokensPublic(tokens=[TokenPublic.of(t) for t in services.users.tokens_of(caller, name)])


@router.post("/tokens/revoke", status_code=204, responses=error_responses(400, 403, 404, 413))
def revoke_token(body: TokenRevoke, caller: CurrentUser, services: ServicesDep) -> Response:
    services.users.revoke_token(caller, token_id=body.token_id, token=body.token)
    return Response(status_code=204)
