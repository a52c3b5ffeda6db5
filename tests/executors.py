"""The executors a server-level suite runs against: the local one, and the Ray one on the
session's shared two-node cluster (with the PostgreSQL database it needs)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from integration.storage_support import fresh_database
from ray_cluster import ray_server_args, ray_server_env
from server_harness import ServerProcess
from server_support import running_server

EXECUTORS = ["local", "ray"]


def cancel_pending(server: ServerProcess) -> None:
    """Cancel what the server left queued or running: on Ray, its jobs would outlive it and
    hold the shared cluster's CPUs."""
    if server.process is None or server.process.poll() is not None:
        return
    with server.client() as admin:
        pending = admin.get("/jobs", params={"pending": "true", "limit": 1000}).json()["jobs"]
        for job in pending:
            admin.post(f"/jobs/{job['id']}/cancel")


def started_server(
    request: pytest.FixtureRequest,
    base: Path,
    stack: ExitStack,
    env: dict[str, str] | None = None,
    **options: Any,
) -> ServerProcess:
    """A running server on the executor named by ``request.param``; stopped with ``stack``,
    after its pending jobs are cancelled."""
    executor = server_options(request, base, stack, env or {})
    extra_args = [*executor.pop("extra_args", []), *options.pop("extra_args", [])]
    server = stack.enter_context(running_server(base, **executor, **options, extra_args=extra_args))
    stack.callback(cancel_pending, server)
    return server


def server_options(
    request: pytest.FixtureRequest, base: Path, stack: ExitStack, env: dict[str, str]
) -> dict[str, Any]:
    """``ServerProcess`` options for the executor named by ``request.param`` (one of
    :data:`EXECUTORS`), with the server's own environment ``env`` kept."""
    if request.param != "ray":
        return {"extra_env": env}
    database = stack.enter_context(fresh_database("postgresql", base))
    return {
        "database_url": database.url,
        "extra_args": ray_server_args(request.getfixturevalue("shared_ray_cluster")),
        "extra_env": {**env, **ray_server_env()},
    }
