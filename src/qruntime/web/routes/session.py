"""Sign-in with an API token, and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from qruntime.domain.errors import NotAuthenticatedError
from qruntime.web.auth import CheckedSession, safe_next
from qruntime.web.cookie import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from qruntime.web.credentials import client_address
from qruntime.web.csrf import check_same_origin
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import PageRoute
from qruntime.web.templating import render

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)


@router.get("/sign-in")
def sign_in_page(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            services.users.authenticate(cookie, source=client_address(request))
            return RedirectResponse(safe_next(next), status_code=303)
        except NotAuthenticatedError:
            pass
    response = render(request, "sign_in.html", {"next": safe_next(next), "error": None})
    if cookie:  # revoked or unknown: forget it
        clear_session_cookie(response, request)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """No form token can exist before a session; the origin check stops login forgery."""
    check_same_origin(request)
    token = token.strip()
    try:
        services.users.authenticate(token, source=client_address(request))
    except NotAuthenticatedError:
        error = "That token is not valid (unknown or revoked). Check it and try again."
        context = {"next": safe_next(next), "error": error}
        return render(request, "sign_in.html", context, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, token)
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: CheckedSession) -> Response:
    response = RedirectResponse("/ui/sign-in", status_code=303)
    clear_session_cookie(response, request)
    return response
