"""Who calls a thin endpoint, by the rules of ``api/deps.py``, without a thread when the body
gate or the token cache already knows the caller (the common case: both requests of a job)."""

from __future__ import annotations

from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection
from starlette.types import Scope

from qruntime.api.deps import COOKIE_METHODS
from qruntime.service.principal import Principal
from qruntime.service.users import UserService
from qruntime.web.cookie import SESSION_COOKIE
from qruntime.web.credentials import GATE_PRINCIPAL


def bearer_token(scope: Scope) -> str | None:
    """What FastAPI's ``HTTPBearer`` reads: the first ``Authorization`` header's credentials."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, credentials = get_authorization_scheme_param(text)
            if scheme and credentials and scheme.lower() == "bearer":
                return credentials
            return None
    return None


def credential(scope: Scope) -> tuple[str, str] | None:
    """(kind, token) as ``current_principal`` picks them; None where it would refuse (401)."""
    token = bearer_token(scope)
    if token is not None:
        return "bearer", token
    if scope["method"] in COOKIE_METHODS:
        cookie = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        if cookie:
            return "cookie", cookie
    return None


def known_caller(scope: Scope, users: UserService, kind: str, token: str) -> Principal | None:
    """The caller the body gate found with this kind of credential, else the token cache's;
    None means a lookup (``users.authenticate``, off the event loop) is needed."""
    found = scope.get("state", {}).get(GATE_PRINCIPAL)
    if found is not None and found[0] == kind:
        return found[1]
    return users.cached(token)
