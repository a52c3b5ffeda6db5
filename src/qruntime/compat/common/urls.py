"""The URLs a client is told to use, from the request it sent: behind a TLS proxy or not."""

from __future__ import annotations

from starlette.requests import HTTPConnection


def base_url(connection: HTTPConnection) -> str:
    """``scheme://host[:port]`` as the client reached us (uvicorn applies forwarded headers)."""
    return str(connection.base_url).rstrip("/")


def websocket_base_url(connection: HTTPConnection) -> str:
    """The same server with ``ws``/``wss`` instead of ``http``/``https``."""
    url = base_url(connection)
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    return "ws://" + url.removeprefix("http://")
