"""HTTP plumbing for the SDK: one httpx client, the bearer token, retries, and error mapping.

Only requests that are safe to repeat are retried after a lost connection or a 502/503/504;
a request that never reached the server (connection refused) is retried whatever its method.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, connect_sse

from qruntime import __version__
from qruntime.client.exceptions import (
    QRuntimeClientError,
    RuntimeBackendError,
    RuntimeBackendNotFound,
    RuntimeConnectionError,
    RuntimeDuplicateProgramError,
    RuntimeInvalidInputsError,
    RuntimeInvalidProgramError,
    RuntimeInvalidStateError,
    RuntimeJobNotFound,
    RuntimeNotAuthorizedError,
    RuntimeNotFoundError,
    RuntimeProgramNotFound,
    RuntimeRequestError,
    RuntimeServerError,
)
from qruntime.domain.errors import Problem

__all__ = ["RETRYABLE_STATUSES", "ApiClient", "error_from_response"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
#: Errors raised before the request left this machine: repeating them cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
#: Errors after which an idempotent request may be repeated.
_LOST = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)

#: Parsed URLs an ApiClient keeps, by path (``/jobs`` and the other fixed paths).
_KEPT_URLS = 256

_NOT_FOUND = {
    "program": RuntimeProgramNotFound,
    "job": RuntimeJobNotFound,
    "backend": RuntimeBackendNotFound,
}
_BY_CODE: dict[str, type[QRuntimeClientError]] = {
    "duplicate": RuntimeDuplicateProgramError,
    "invalid_state": RuntimeInvalidStateError,
    "invalid_inputs": RuntimeInvalidInputsError,
    "invalid_metadata": RuntimeInvalidProgramError,
    "invalid_source": RuntimeInvalidProgramError,
    "unknown_backend": RuntimeBackendError,
    "backend_requirements": RuntimeBackendError,
}
_AUTH_HINT = (
    " (check the token: RuntimeService(token=...), QRUNTIME_TOKEN, "
    "or the account saved with RuntimeService.save_account)"
)


class ApiClient:
    """Sends requests to one qruntime server and turns refusals into SDK exceptions."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.1,
        account_name: str | None = None,
    ) -> None:
        headers = {"User-Agent": f"qruntime-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        #: The saved account the URL came from, named when the server cannot be reached.
        self.account_name = account_name
        self.timeout = timeout
        self._urls: dict[str, httpx.URL] = {}
        self._retries = retries
        self._backoff = backoff
        self._client = httpx.Client(
            base_url=self.url, headers=headers, transport=transport, timeout=timeout
        )
        # A service the program never closes (as the seeds use it) closes its pooled
        # connections when it is collected, instead of leaving their sockets to warn.
        weakref.finalize(self, self._client.close)

    def close(self) -> None:
        self._client.close()

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    def request(
        self,
        method: str,
        path: str,
        *,
        resource: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one request (retrying where safe); return the read response or raise."""
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS
        attempt = 0
        while True:
            try:
                response = self._client.request(method, self._url(path, params), json=json)
            except httpx.TransportError as exc:
                retryable = isinstance(exc, _NOT_SENT) or (idempotent and isinstance(exc, _LOST))
                if retryable and attempt < self._retries:
                    attempt = self._pause(attempt)
                    continue
                raise self.unreachable(exc) from exc
            retryable = idempotent and response.status_code in RETRYABLE_STATUSES
            if retryable and attempt < self._retries:
                attempt = self._pause(attempt)
                continue
            if response.is_error:
                raise error_from_response(response, resource)
            return response

    def unreachable(self, exc: Exception) -> RuntimeConnectionError:
        """The error for a server that did not answer, naming the account its URL came from."""
        origin = f" (saved account {self.account_name!r})" if self.account_name else ""
        return RuntimeConnectionError(
            f"cannot reach the qruntime server at {self.url}{origin}: {exc or type(exc).__name__}",
            account_name=self.account_name,
        )

    def get_json(self, path: str, *, resource: str | None = None, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, resource=resource, params=clean).json()

    @contextmanager
    def event_stream(
        self, path: str, *, params: dict[str, Any], headers: dict[str, str], read_timeout: float
    ) -> Iterator[EventSource]:
        """Open a server-sent-event stream; an error status raises before any event is read."""
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        with connect_sse(
            self._client, "GET", self._url(path, params), headers=headers, timeout=timeout
        ) as source:
            response = source.response
            if response.is_error:
                response.read()
                raise error_from_response(response, "job")
            yield source

    def _url(self, path: str, params: dict[str, Any] | None) -> httpx.URL:
        """The request's absolute URL, parsed once: httpx's merge of a path (and parameters)
        with ``base_url`` parses it three times. Paths without parameters are kept."""
        if params:
            return httpx.URL(self.url + path, params=params)
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _KEPT_URLS:
                self._urls.clear()
            url = self._urls[path] = httpx.URL(self.url + path)
        return url

    def _pause(self, attempt: int) -> int:
        time.sleep(self._backoff * (2**attempt))
        return attempt + 1


def error_from_response(response: httpx.Response, resource: str | None) -> QRuntimeClientError:
    """Map the documented error body (or anything else a proxy sent) to one exception."""
    status = response.status_code
    code, message, problems = _parse_error_body(response)
    if status == 404:
        cls: type[QRuntimeClientError] = _NOT_FOUND.get(resource or "", RuntimeNotFoundError)
    elif status in (401, 403):
        cls = RuntimeNotAuthorizedError
        if status == 401:
            message += _AUTH_HINT
    elif status >= 500:
        cls = RuntimeServerError
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    else:
        cls = RuntimeRequestError
    return cls(message, status_code=status, code=code, problems=problems)


def _parse_error_body(response: httpx.Response) -> tuple[str | None, str, list[Problem]]:
    fallback = f"HTTP {response.status_code} {response.reason_phrase} from {response.url}"
    try:
        error = response.json()["error"]
        code = error.get("code")
        message = error.get("message") or fallback
        problems = [
            Problem(str(p.get("location", "")), str(p.get("message", "")))
            for p in error.get("problems") or []
            if isinstance(p, dict)
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.text.strip()
        return None, f"{fallback}: {text[:500]}" if text else fallback, []
    return (code if isinstance(code, str) else None), str(message), problems
