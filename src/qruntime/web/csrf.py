"""Cross-site request forgery checks for the dashboard's forms.

A form token is the HMAC of the session token under a secret every replica of the database
shares (made once, kept in the database): it needs no storage of its own, dies with the
session, holds across replicas and restarts, and cannot be computed by another site. POSTs
must also come from our own origin, and the cookie is SameSite=Strict besides.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request

from qruntime.domain.errors import ForbiddenError

CSRF_FIELD = "csrf_token"


class CrossSiteRequestError(ForbiddenError):
    """A form without our token, or one sent from another site's page."""


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def form_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, session_token.encode(), hashlib.sha256).hexdigest()


def check_same_origin(request: Request) -> None:
    """Browsers send ``Origin`` (or at least ``Referer``) with a POST; it must name this host."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return  # not a browser, so not a forgery; the form token must still match
    if claimed == "null" or urlsplit(claimed).netloc != request.headers.get("host", ""):
        raise CrossSiteRequestError(
            "this form was sent from another site; open the dashboard and submit it there"
        )


def check_form_token(expected: str, submitted: str) -> None:
    if not submitted or not hmac.compare_digest(submitted, expected):
        raise CrossSiteRequestError(
            "this form is stale or was not made by this server; reload the page and try again"
        )
