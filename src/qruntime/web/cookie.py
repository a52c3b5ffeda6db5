"""The session cookie: the caller's API token, HttpOnly, SameSite=Strict, for the whole site
(the API's event stream reads it too, since EventSource cannot send an Authorization header)."""

from __future__ import annotations

from fastapi import Request, Response

SESSION_COOKIE = "qruntime_session"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, **_attributes(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, **_attributes(request))


def _attributes(request: Request) -> dict:
    return {
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }
