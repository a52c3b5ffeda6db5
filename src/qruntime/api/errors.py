"""The one place where errors become HTTP responses; clients never see a server traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qruntime.api.schemas import ErrorBody
from qruntime.domain.errors import (
    BackendRequirementsError,
    DuplicateError,
    ForbiddenError,
    InvalidInputsError,
    InvalidMetadataError,
    InvalidSourceError,
    InvalidStateError,
    NotAuthenticatedError,
    NotFoundError,
    NotTranslatableError,
    Problem,
    QRuntimeError,
    QuotaExceededError,
    SerializationError,
    TooLargeError,
    UnknownBackendError,
    ValidationFailed,
)
from qruntime.domain.text import repair_text

log = logging.getLogger("qruntime.api")

#: Checked in order, so subclasses come before their bases.
_MAPPING: list[tuple[type[Exception], int, str]] = [
    (InvalidMetadataError, 400, "invalid_metadata"),
    (InvalidSourceError, 400, "invalid_source"),
    (InvalidInputsError, 400, "invalid_inputs"),
    (BackendRequirementsError, 400, "backend_requirements"),
    (UnknownBackendError, 400, "unknown_backend"),
    (TooLargeError, 413, "too_large"),
    (QuotaExceededError, 429, "quota_exceeded"),
    (NotTranslatableError, 406, "not_translatable"),
    (ValidationFailed, 400, "bad_request"),
    (SerializationError, 400, "bad_request"),
    (NotAuthenticatedError, 401, "not_authenticated"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (DuplicateError, 409, "duplicate"),
    (InvalidStateError, 409, "invalid_state"),
]

#: Codes of the refusals the framework and middleware make (bodies that are not JSON, unknown
#: paths, wrong methods, bodies over the limit, FastAPI's request validation).
_FRAMEWORK_CODES: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "bad_request",
    503: "unavailable",
}

_SUMMARIES = {
    400: "Refused before anything was stored.",
    401: "No token, or an unknown or revoked one.",
    403: "The caller's role may not do this.",
    404: "No such thing visible to the caller.",
    405: "The path exists, but not with this method.",
    406: "A stored value has no form in this client's format (compatibility routes).",
    409: "Taken, or in the wrong state for this request.",
    413: "The source, the inputs or the request body is over the server's limits.",
    422: "The request has the wrong shape; `problems` says where.",
    429: "A quota or limit is reached (queued jobs, open streams, stored bytes, failed "
    "authentications); the message names it.",
    503: "This replica cannot serve now: its database cannot be reached.",
}


def error_responses(*statuses: int, json_route: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for refusals with these statuses, all with the one JSON error body.

    Routers declare what each route may answer with this, so the served schema documents every
    status the API really sends (and FastAPI does not add its own 422 body, which we never send).
    A route whose success is not JSON (plain text, an event stream) passes ``json_route=False``
    and repeats the router's statuses: FastAPI files a ``model`` under the route's media type,
    so these point at the schema that the JSON routes' ``model`` puts in the components.
    """
    if json_route:
        return {s: {"model": ErrorBody, "description": _describe(s)} for s in statuses}
    schema = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
    content = {"application/json": {"schema": schema}}
    return {s: {"description": _describe(s), "content": content} for s in statuses}


def _describe(status: int) -> str:
    codes = [code for _, mapped, code in _MAPPING if mapped == status]
    if status in _FRAMEWORK_CODES:
        codes.append(_FRAMEWORK_CODES[status])
    listed = ", ".join(f"`{code}`" for code in dict.fromkeys(codes))
    return f"{_SUMMARIES[status]} `error.code`: {listed}."


#: Every route behind the bearer token may answer these.
AUTHENTICATED = error_responses(401, 422, 429)


def error_response(
    status: int, code: str, message: str, problems: list[Problem] | None = None
) -> JSONResponse:
    # A refusal may quote the refused text: repaired, so that no lone surrogate breaks it.
    body: dict[str, Any] = {
        "error": {
            "code": code,
            "message": repair_text(message),
            "problems": [
                {"location": repair_text(p.location), "message": repair_text(p.message)}
                for p in problems or []
            ],
        }
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QRuntimeError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    return domain_error_response(exc, request.method, request.url.path)


def domain_error_response(exc: Exception, method: str, path: str) -> JSONResponse:
    """The refusal a domain error maps to; any other error is logged and answered 500."""
    for cls, status, code in _MAPPING:
        if isinstance(exc, cls):
            problems = exc.problems if isinstance(exc, ValidationFailed) else None
            return error_response(status, code, str(exc), problems)
    return unexpected_error_response(exc, method, path)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        Problem(".".join(str(part) for part in err.get("loc", ())), str(err.get("msg", "")))
        for err in exc.errors()
    ]
    summary = "; ".join(str(p) for p in problems) or "malformed request"
    return error_response(422, "bad_request", f"invalid request: {summary}", problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _FRAMEWORK_CODES.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})  # the ``Allow`` of a 405, for one
    return response


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_error_response(exc, request.method, request.url.path)


def unexpected_error_response(exc: Exception, method: str, path: str) -> JSONResponse:
    log.exception("unexpected error in %s %s", method, path, exc_info=exc)
    return error_response(
        500, "internal_error", "internal server error; the server log has details"
    )
