"""``POST /identity/token``: the IAM-style exchange of a qruntime token (the client's API key)
for a short-lived access token, which is what the client sends on every later request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.compat.ibm_runtime.deps import TAGS
from qruntime.domain.errors import Problem, ValidationFailed
from qruntime.web.credentials import client_address

router = APIRouter(tags=TAGS)
#: The grant type ibm-cloud-sdk-core's IAMTokenManager asks for.
API_KEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


@router.post("/identity/token", responses=error_responses(400, 401, 413, 422, 429))
def exchange_token(
    request: Request,
    services: ServicesDep,
    grant_type: Annotated[str, Form(max_length=100)],
    apikey: Annotated[str | None, Form(max_length=512, description="A qruntime token.")] = None,
) -> dict[str, Any]:
    """A wrong key counts towards the address's limit on failed authentications."""
    if grant_type != API_KEY_GRANT:
        raise ValidationFailed(
            Problem("grant_type", f"{grant_type!r}: only {API_KEY_GRANT!r} is served")
        )
    issued = services.users.exchange(apikey, source=client_address(request))
    return {
        "access_token": issued.token,
        "refresh_token": "not_supported",
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "expiration": issued.expiration,
        "scope": "qruntime",
    }
