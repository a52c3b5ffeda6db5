"""The one place where errors become HTTP responses; clients never see a server traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    Problem,
    QRuntimeError,
    SerializationError,
    TooLargeError,
    UnknownBackendError,
    ValidationFailed,
)

log = logging.getLogger("qruntime.api")

#: Checked in order, so subclasses come before their bases.
_MAPPING: list[tuple[type[Exception], int, str]] = [
    (InvalidMetadataError, 400, "invalid_metadata"),
    (InvalidSourceError, 400, "invalid_source"),
    (InvalidInputsError, 400, "invalid_inputs"),
    (BackendRequirementsError, 400, "backend_requirements"),
    (UnknownBackendError, 400, "unknown_backend"),
    (TooLargeError, 413, "too_large"),
    (ValidationFailed, 400, "bad_request"),
    (SerializationError, 400, "bad_request"),
    (NotAuthenticatedError, 401, "not_authenticated"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (DuplicateError, 409, "duplicate"),
    (InvalidStateError, 409, "invalid_state"),
]


def error_response(
    status: int, code: str, message: str, problems: list[Problem] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "error": {
            "code": code,
            "message": message,
            "problems": [{"location": p.location, "message": p.message} for p in problems or []],
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
    for cls, status, code in _MAPPING:
        if isinstance(exc, cls):
            problems = exc.problems if isinstance(exc, ValidationFailed) else None
            return error_response(status, code, str(exc), problems)
    return await _unexpected_error(request, exc)


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
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http_error"
    )
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "internal server error; the server log has details"
    )
