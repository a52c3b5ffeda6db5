"""Who is signed in to the dashboard, from the session cookie; and the checks on its forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from qruntime.domain.errors import NotAuthenticatedError
from qruntime.service.principal import Principal
from qruntime.web.cookie import SESSION_COOKIE
from qruntime.web.credentials import authenticated
from qruntime.web.csrf import check_form_token, check_same_origin, form_token
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import SignInRequired

#: Where the dashboard starts, and where unsafe ``next`` targets go instead.
HOME = "/ui/programs"


@dataclass(frozen=True)
class Session:
    token: str
    caller: Principal
    #: What every form of this session must send back (see ``csrf.py``).
    form_token: str


def page_session(request: Request, services: ServicesDep) -> Session:
    """The signed-in caller, or a redirect to the sign-in page that comes back here."""
    token = request.cookies.get(SESSION_COOKIE)
    back = HOME
    if request.method == "GET":
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise SignInRequired(back)
    try:
        caller = authenticated(request, services, "cookie", token)
    except NotAuthenticatedError:
        raise SignInRequired(back) from None
    session = Session(token, caller, form_token(request.app.state.csrf_secret, token))
    request.state.session = session  # for the page header: who is signed in, the sign-out form
    return session


def checked_session(
    request: Request,
    session: Annotated[Session, Depends(page_session)],
    csrf_token: Annotated[str, Form()] = "",
) -> Session:
    """The session of a state-changing form, once its origin and form token are checked."""
    check_same_origin(request)
    check_form_token(session.form_token, csrf_token)
    return session


def page_caller(session: Annotated[Session, Depends(page_session)]) -> Principal:
    return session.caller


PageCaller = Annotated[Principal, Depends(page_caller)]
CheckedSession = Annotated[Session, Depends(checked_session)]


def safe_next(target: str | None) -> str:
    """Only our own pages: no scheme, no host, no ``//`` trick, so sign-in is no open redirect."""
    if not target or not target.startswith("/ui/") or "\\" in target or "//" in target:
        return HOME
    return target
