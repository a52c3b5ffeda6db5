"""Who sends a body decides how much of it is read: the token is checked from the headers first.

A request without a valid token may send a few KiB (a sign-in form, a token exchange); one
with a valid token may send up to the server's body limit. A declared ``Content-Length`` over
the caller's limit is refused before a byte of the body is read; a chunked body is cut off
once it passes it. Refusals close the connection, so an unread body is never drained.
Pure ASGI: the JSON API, the dashboard and compatibility routes all sit behind it. Each
request (and websocket) counts at most one failed authentication, however often it is looked up.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qruntime.api.errors import error_response
from qruntime.domain.errors import NotAuthenticatedError, QuotaExceededError
from qruntime.service.auth_failures import one_request
from qruntime.service.principal import Principal
from qruntime.web.credentials import GATE_PRINCIPAL, header_credentials

Authenticate = Callable[..., Principal]


class BodyGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        anonymous_limit: int,
        limit: int,
        cached: Callable[[str], Principal | None] = lambda token: None,
    ):
        self.app = app
        self.authenticate = authenticate
        self.cached = cached  # a token checked moments ago: no thread hop to look it up
        self.anonymous_limit = anonymous_limit
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            with one_request():
                await self.app(scope, receive, send)
        elif scope["type"] == "http":
            with one_request():
                await self._gate(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if not (headers.get(b"transfer-encoding") or (length.isdigit() and int(length) > 0)):
            await self.app(scope, receive, send)  # no body: the route checks the token itself
            return
        principal = None
        kind, token = header_credentials(headers)
        if token and (principal := self.cached(token)) is None:
            client = scope.get("client")
            try:
                principal = await run_in_threadpool(
                    self.authenticate, token, source=client[0] if client else None
                )
            except NotAuthenticatedError:
                principal = None
            except QuotaExceededError as exc:
                await _refuse(429, "quota_exceeded", str(exc), scope, receive, send)
                return
        if principal is not None:
            scope.setdefault("state", {})[GATE_PRINCIPAL] = (kind, principal)
        limit = self.limit if principal is not None else self.anonymous_limit
        if length.isdigit() and int(length) > limit:
            await self._too_large(principal, limit, int(length), scope, receive, send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._too_large(principal, limit, None, scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the refusal is already out; drop whatever the app says after it
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _too_large(
        self,
        principal: Principal | None,
        limit: int,
        length: int | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        size = f"request body of {length} bytes" if length is not None else "request body"
        if principal is None:
            message = (
                f"{size} is over {limit} bytes, the most a request without a valid token may "
                "send (QRUNTIME_MAX_ANONYMOUS_BODY_BYTES); send 'Authorization: Bearer <token>'"
            )
            await _refuse(401, "not_authenticated", message, scope, receive, send)
            return
        message = f"{size} is over the limit of {limit} bytes"
        await _refuse(413, "too_large", message, scope, receive, send)


async def _refuse(
    status: int, code: str, message: str, scope: Scope, receive: Receive, send: Send
) -> None:
    response = error_response(status, code, message)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
