"""Where a request's credential comes from (bearer header or session cookie) and who it is.

Shared by the body gate in front of the whole app, the JSON API and the dashboard, so that a
caller the gate already authenticated is not looked up twice, and every lookup counts towards
the client address's limit on failed authentications (``service/auth_failures.py``).
"""

from __future__ import annotations

from fastapi import Request
from starlette.requests import cookie_parser

from qruntime.service.container import Services
from qruntime.service.principal import Principal
from qruntime.web.cookie import SESSION_COOKIE

#: Where the body gate leaves the caller it authenticated (``scope["state"]``), with the kind
#: of credential it used ("bearer", "access-token" or "cookie").
GATE_PRINCIPAL = "qruntime.gate_principal"


#: The 2021 IBM Quantum provider's header for its access token (qruntime/compat/ibmq2021).
ACCESS_TOKEN_HEADER = b"x-access-token"


def header_credentials(headers: dict[bytes, bytes]) -> tuple[str, str | None]:
    """The bearer token from ``Authorization``, else the compatibility API's access token,
    else the dashboard's session cookie."""
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "bearer", value.strip()
    access_token = headers.get(ACCESS_TOKEN_HEADER, b"").decode("latin-1").strip()
    if access_token:
        return "access-token", access_token
    cookie = cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(SESSION_COOKIE)
    return ("cookie", cookie) if cookie else ("bearer", None)


def authenticated(request: Request, services: Services, kind: str, token: str) -> Principal:
    """The caller the body gate found with this kind of credential, or a fresh lookup."""
    found = request.scope.get("state", {}).get(GATE_PRINCIPAL)
    if found is not None and found[0] == kind:
        return found[1]
    return services.users.authenticate(token, source=client_address(request))


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None
