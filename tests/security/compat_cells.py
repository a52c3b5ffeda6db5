"""How the authorization matrix calls the compatibility routes (``/api/...``) and websockets.

The 2021 IBM client sends its token as ``X-Access-Token`` (cookies and bearer headers do not
count there), the login route takes it in the body, and the two websockets take it in the
handshake (interim results) or in the first message (Qobj job status). A websocket cell's
outcome is written as the status an HTTP route would give: 200 (accepted), 401, 404.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

ACCESS = "X-Access-Token"
COOKIE = "qruntime_session"


@dataclass(frozen=True)
class CompatAttempt:
    how: str
    headers: dict[str, str] = field(default_factory=dict)
    #: The token the login body or the status socket's first message carries.
    token: str = ""


def is_compat(path: str) -> bool:
    """A 2021-client route (today's client's ``/api/v1`` takes bearer tokens: ``is_v1``)."""
    return (path == "/api" or path.startswith("/api/")) and not is_v1(path)


#: Today's qiskit-ibm-runtime: its token exchange, instance look-ups and REST API.
V1_PREFIXES = ("/api/v1/", "/global-search/", "/global-catalog/")
TOKEN_EXCHANGE = "/identity/token"
API_KEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def is_v1(path: str) -> bool:
    return path == TOKEN_EXCHANGE or path.startswith(V1_PREFIXES)


def compat_attempts(tokens: dict[str, str], caller: str, names: dict[str, str]) -> list:
    """``names`` maps the matrix's caller constants: anonymous, malformed, cookie, revoked."""
    owner = tokens[names["owner"]]
    if caller == names["anonymous"]:
        return [CompatAttempt("no X-Access-Token")]
    if caller == names["malformed"]:
        return [
            CompatAttempt("garbage token", {ACCESS: "not-a-token"}, "not-a-token"),
            CompatAttempt("owner's token as Bearer", {"Authorization": f"Bearer {owner}"}, " "),
        ]
    if caller == names["cookie"]:
        return [CompatAttempt("cookie only", {"Cookie": f"{COOKIE}={owner}"})]
    return [CompatAttempt("X-Access-Token", {ACCESS: tokens[caller]}, tokens[caller])]


def ws_outcome(base_url: str, path: str, attempt: CompatAttempt) -> int:
    """Open the websocket as the attempt says; the outcome as an HTTP-like status."""
    url = base_url.replace("http", "ws", 1) + path
    context = ssl.create_default_context() if url.startswith("wss") else None
    headers = {k: v for k, v in attempt.headers.items() if v}
    if path.startswith("/api/ws/"):
        return _status_socket(url, headers, attempt.token)
    try:
        with connect(url, additional_headers=headers, ssl=context, open_timeout=30) as ws:
            first = json.loads(ws.recv(timeout=30))
            assert first.get("type") == "acknowledged", first
            return 200
    except InvalidStatus as refused:
        return refused.response.status_code


def _status_socket(url: str, headers: dict[str, str], token: str) -> int:
    with connect(url, additional_headers=headers, open_timeout=30) as ws:
        ws.send(json.dumps({"type": "authentication", "data": token}))
        try:
            answer = json.loads(ws.recv(timeout=30))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4003, closed
            return 404
        if answer.get("type") == "authenticated":
            return 200
        assert answer.get("type") == "error", answer
        return 401
