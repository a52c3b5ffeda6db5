"""CPU of the two requests of every job, ``POST /jobs`` and ``GET /jobs/{id}/stream``, through
the ASGI app in-process (no uvicorn, no executor), with the thin endpoints and without
(``thin_endpoints`` off: FastAPI's routes): the median over alternating rounds.

    .venv/bin/python bench/perf/request_cost.py [rounds] [pairs per round] [--postgres]

The stream is of a cancelled job, so it ends at once (its reads and final event); the process's
CPU counts the worker threads the requests hop to. With older code on ``PYTHONPATH`` only the
second figure means anything (it has no thin endpoints to turn off).
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from common import TRIVIAL_PROGRAM, Row
from statements import fresh_postgres

from qruntime.api import create_app
from qruntime.domain.users import Role
from qruntime.service.container import Services
from qruntime.service.principal import Principal
from qruntime.settings import Settings


def _scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},  # as uvicorn's h11 says
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: Any, scope: dict, body: bytes = b"") -> tuple[int, bytes]:
    sent: list[dict] = []
    request = [{"type": "http.request", "body": body, "more_body": False}]
    finished = asyncio.Event()

    async def receive() -> dict:
        if request:
            return request.pop()
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    finished.set()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def _pairs(app: Any, token: str, program_id: str, done_job: str, count: int) -> None:
    auth = (b"authorization", f"Bearer {token}".encode())
    for n in range(count):
        body = json.dumps({"program_id": program_id, "inputs": {"n": n}}).encode()
        headers = [auth, (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        status, _ = await _call(app, _scope("POST", "/jobs", b"", headers), body)
        if status != 201:
            raise RuntimeError(f"submit answered {status}")
        path = f"/jobs/{done_job}/stream"
        status, events = await _call(app, _scope("GET", path, b"since=0", [auth]))
        if status != 200 or b"event: final" not in events:
            raise RuntimeError(f"stream answered {status}: {events[:200]!r}")


def measure(database_url: str | None, rounds: int, per_round: int) -> dict[str, float]:
    """Median CPU milliseconds per pair of requests, by app ("thin", "routes")."""
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="qruntime-bench-requests-")),
        database_url=database_url,
        worker_pool_size=0,
        max_queued_jobs_per_user=10**9,
    )
    services = Services.build(settings)
    apps = {
        "routes": create_app(
            settings.model_copy(update={"thin_endpoints": False}), services=services
        )
    }
    if "thin_endpoints" in Settings.model_fields:
        apps["thin"] = create_app(settings, services=services)
    try:
        services.db.migrate()
        issued = services.users.create_user(None, "bench", Role.USER)
        caller = Principal(issued.user.id, issued.user.name, Role.USER)
        source = base64.b64encode(TRIVIAL_PROGRAM.encode()).decode()
        metadata = {"name": "requests", "description": "x", "max_execution_time": 60}
        program = services.programs.upload(caller, data=source, metadata=metadata)
        done = services.jobs.submit(
            caller, program_id=program.id, backend="aer_simulator", inputs={}
        )
        asyncio.run(services.jobs.cancel(caller, done.id))  # queued: cancelled at once
        figures: dict[str, list[float]] = {name: [] for name in apps}

        async def run() -> None:
            for app in apps.values():  # warm: imports, caches, the middleware stacks
                await _pairs(app, issued.token, program.id, done.id, 20)
            for _ in range(rounds):
                for name, app in apps.items():
                    started = time.process_time()
                    await _pairs(app, issued.token, program.id, done.id, per_round)
                    figures[name].append((time.process_time() - started) * 1000 / per_round)

        asyncio.run(run())
        return {name: statistics.median(values) for name, values in figures.items()}
    finally:
        services.db.dispose()


def rows(rounds: int, per_round: int, *, postgres: bool = True) -> list[Row]:
    """The thin endpoints against FastAPI's routes, on SQLite and a fresh PostgreSQL database."""
    found = [("SQLite", measure(None, rounds, per_round))]
    if postgres:
        with fresh_postgres() as url:
            found.append(("PostgreSQL", measure(url, rounds, per_round)))
    what = "{}: POST /jobs + GET /jobs/{{id}}/stream through the ASGI app in-process, thin "
    what += f"endpoints, median of {rounds} x {per_round}"
    return [
        Row(
            "CPU per submit + stream",
            what.format(label),
            f"{ms['thin']:.2f} ms",
            baseline=f"FastAPI's routes {ms['routes']:.2f} ms ({ms['thin'] / ms['routes']:.2f}x)",
        )
        for label, ms in found
        if "thin" in ms
    ]


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(arguments[0]) if arguments else 5
    per_round = int(arguments[1]) if len(arguments) > 1 else 200
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if "--postgres" in sys.argv else None
        found = measure(url, rounds, per_round)
    label = "PostgreSQL" if url else "SQLite"
    for name, ms in found.items():
        what = f"{label}, {name}, median of {rounds} x {per_round}"
        print(f"| CPU per POST /jobs + stream | {what} | {ms:.2f} ms |")
