"""``qruntime serve`` parses HTTP with h11 on asyncio's own loop, both named outright: uvicorn's
"auto" would take httptools and uvloop wherever some other package installed them, which cost
each streamed interim result more server CPU (docs/performance.md has the A/Bs)."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

from qruntime.cli.serve_cmd import uvicorn_config
from qruntime.settings import Settings


async def _app(scope, receive, send) -> None:  # pragma: no cover - never called
    raise AssertionError("not served")


def test_the_served_config_parses_with_h11() -> None:
    config = uvicorn_config(_app, Settings(host="127.0.0.1", port=8800), "info")
    config.load()
    assert config.http == "h11"
    assert config.http_protocol_class is H11Protocol


def test_the_served_config_runs_on_asyncios_own_loop() -> None:
    config = uvicorn_config(_app, Settings(host="127.0.0.1", port=8800), "info")
    assert config.loop == "asyncio"
    loop = config.get_loop_factory()()
    try:
        assert isinstance(loop, asyncio.BaseEventLoop)  # uvloop.Loop is not one
    finally:
        loop.close()


def test_the_served_config_keeps_its_address_and_proxies() -> None:
    settings = Settings(host="127.0.0.1", port=8801, forwarded_allow_ips="10.0.0.1")
    config = uvicorn_config(_app, settings, "WARNING")
    assert (config.host, config.port, config.log_level) == ("127.0.0.1", 8801, "warning")
    assert config.proxy_headers and config.forwarded_allow_ips == "10.0.0.1"
