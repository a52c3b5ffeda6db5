"""One real ``qruntime serve`` (with the ``runtime/`` catalogue) for the dashboard tests, its
users, and a headless Debian Chromium driven by Playwright (``scripts/install-browser``)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_harness import ServerProcess
from server_support import create_user, running_server, upload

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SESSION_COOKIE = "qruntime_session"
#: Generous waits for what a page shows; deadlines, not benchmarks.
EXPECT_TIMEOUT_MS = 20_000
#: Set to a directory (e.g. docs/screenshots) to keep the screenshots the tests take.
SCREENSHOTS_ENV = "QRUNTIME_SCREENSHOTS"
#: Only while runtime/ is being edited: publish another catalogue directory instead.
CATALOGUE_ENV = "QRUNTIME_TEST_CATALOGUE"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    catalogue = os.environ.get(CATALOGUE_ENV) or str(REPO / "runtime")
    base = tmp_path_factory.mktemp("dashboard")
    with running_server(base, extra_args=["--catalogue", catalogue]) as server:
        yield server


@pytest.fixture(scope="session")
def admin_client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def tokens(admin_client: httpx.Client) -> dict[str, str]:
    """Two plain users: alice does things, bob must not see them."""
    return {name: create_user(admin_client, name)["token"] for name in ("alice", "bob")}


@pytest.fixture(scope="session")
def alice_api(server: ServerProcess, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(tokens["alice"]) as client:
        yield client


@pytest.fixture(scope="session")
def slow_publisher(alice_api: httpx.Client) -> dict[str, Any]:
    """alice's private copy of the fixture that publishes {"i": k} at a steady pace."""
    return upload(alice_api, "slow_publisher")


@pytest.fixture(scope="session")
def energy_descent(alice_api: httpx.Client) -> dict[str, Any]:
    """alice's private VQE-shaped program: {"iteration", "energy", "parameters"} per step."""
    source = (HERE / "programs" / "energy_descent.py").read_bytes()
    metadata = json.loads((HERE / "programs" / "energy_descent.json").read_text())
    body = {"data": base64.b64encode(source).decode(), "metadata": metadata}
    response = alice_api.post("/programs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get(SCREENSHOTS_ENV)
    if kept:
        path = Path(kept)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it
    is open, and pytest-asyncio cannot run async tests in the same process until it closes."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no {CHROMIUM}: run scripts/install-browser (the README's test command does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)  # a job's worker may start slowly under load
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    """Fresh browser contexts (own cookies) on the server, signed in with ``token`` if given
    (the cookie the sign-in form would set); a page's script error fails the test."""
    contexts = []
    errors: list[str] = []

    def make(token: str | None = None) -> Any:
        context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        if token is not None:
            cookie = {"name": SESSION_COOKIE, "value": token, "url": server.url}
            context.add_cookies([cookie | {"httpOnly": True, "sameSite": "Strict"}])
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: _console_error(msg, errors))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def _console_error(message: Any, errors: list[str]) -> None:
    """Script errors and CSP violations count; a 404 page's own status line does not."""
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(message.text)
