"""``qruntime serve`` parses HTTP with httptools and runs on uvloop, both named outright: uvicorn's
"auto" would fall back to h11 and asyncio without a word (docs/performance.md has the A/Bs)."""

from __future__ import annotations

import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from qruntime.cli.serve_cmd import uvicorn_config
from qruntime.settings import Settings


async def _app(scope, receive, send) -> None:  # pragma: no cover - never called
    raise AssertionError("not served")


def test_the_served_config_parses_with_httptools() -> None:
    config = uvicorn_config(_app, Settings(host="127.0.0.1", port=8800), "info")
    config.load()
    assert config.http == "httptools"
    assert config.http_protocol_class is HttpToolsProtocol


def test_the_served_config_runs_on_uvloop() -> None:
    config = uvicorn_config(_app, Settings(host="127.0.0.1", port=8800), "info")
    assert config.loop == "uvloop"
    loop = config.get_loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_served_config_keeps_its_address_and_proxies() -> None:
    settings = Settings(host="127.0.0.1", port=8801, forwarded_allow_ips="10.0.0.1")
    config = uvicorn_config(_app, settings, "WARNING")
    assert (config.host, config.port, config.log_level) == ("127.0.0.1", 8801, "warning")
    assert config.proxy_headers and config.forwarded_allow_ips == "10.0.0.1"
