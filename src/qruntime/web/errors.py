"""The dashboard's one place where errors become responses: HTML pages, never the API's JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from qruntime.domain.errors import (
    ForbiddenError,
    InvalidStateError,
    NotAuthenticatedError,
    NotFoundError,
    QRuntimeError,
    QuotaExceededError,
    TooLargeError,
)
from qruntime.web.templating import render

#: Status and page title per domain error; anything else a page raises is a 400.
_PAGES: list[tuple[type[Exception], int, str]] = [
    (NotFoundError, 404, "Not found"),
    (ForbiddenError, 403, "Not allowed"),
    (InvalidStateError, 409, "Not possible right now"),
    (TooLargeError, 413, "Too large"),
    (QuotaExceededError, 429, "Too many requests"),
]


class SignInRequired(Exception):
    """No valid session: the browser goes to the sign-in page and comes back afterwards."""

    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


class PageRoute(APIRoute):
    """A dashboard route: a domain error renders the error page, a missing session redirects."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return sign_in_redirect(exc.next_path)
            except NotAuthenticatedError:
                return sign_in_redirect(request.url.path)
            except RequestValidationError:
                return error_page(request, 400, "Bad request", "The address is malformed.")
            except QRuntimeError as exc:
                status, title = _status_of(exc)
                return error_page(request, status, title, str(exc))

        return page_handler


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/sign-in?next={quote(next_path, safe='/')}", status_code=303)


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    context = {"title": title, "message": message, "status": status}
    return render(request, "error.html", context, status_code=status)


def _status_of(exc: Exception) -> tuple[int, str]:
    for cls, status, title in _PAGES:
        if isinstance(exc, cls):
            return status, title
    return 400, "Refused"
