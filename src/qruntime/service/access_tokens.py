"""Short-lived access tokens: what the IAM-style exchange hands out for a qruntime token.

Today's qiskit-ibm-runtime trades its API key for a bearer token that it decodes as a JWT (for
``exp`` and ``iat``) and sends on every request. qruntime signs them (HS256) with a secret all
replicas share; each names the qruntime token it came from, so revoking that token ends them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from qruntime.domain.errors import NotAuthenticatedError

#: Seconds an access token lives (IBM's IAM hands out one-hour tokens too).
ACCESS_TOKEN_TTL = 3600
ISSUER = "qruntime"
AUDIENCE = "qruntime-api"
#: Name of the shared secret access tokens are signed with.
ACCESS_TOKEN_SECRET = "iam-access-tokens"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    token_id: str


def looks_like_access_token(token: str) -> bool:
    """qruntime's own tokens have no dots; a JWT has exactly two."""
    return token.count(".") == 2


def issue(secret: bytes, user_id: int, token_id: str, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "tid": token_id,
        "iat": issued,
        "exp": issued + ACCESS_TOKEN_TTL,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: bytes, token: str) -> AccessClaims:
    """The claims of a valid, unexpired access token; NotAuthenticatedError for anything else."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "tid"]},
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticatedError(
            "the access token has expired: exchange your token again at /identity/token"
        ) from None
    except jwt.PyJWTError:
        raise NotAuthenticatedError("unknown or revoked token") from None
    subject, token_id = claims["sub"], claims["tid"]
    if not (isinstance(subject, str) and subject.isdigit() and isinstance(token_id, str)):
        raise NotAuthenticatedError("unknown or revoked token")
    return AccessClaims(int(subject), token_id)
