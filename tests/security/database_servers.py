"""Servers for the security tests that must hold on both databases (SQLite, then PostgreSQL)
and with the Ray executor (on PostgreSQL, the session's shared two-node cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from executors import cancel_pending
from integration.storage_support import fresh_database
from ray_cluster import ray_server_args, ray_server_env
from server_harness import ServerProcess
from server_support import running_server

DATABASES = ["sqlite", "postgresql"]
#: What a server-level security suite runs on: each database, then Ray (on PostgreSQL).
BACKINGS = [*DATABASES, "ray"]


@contextmanager
def server_on(
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    *,
    request: pytest.FixtureRequest | None = None,
    **options: Any,
) -> Iterator[ServerProcess]:
    """A started server on a fresh database of the given kind (PostgreSQL ones are dropped);
    ``ray`` runs its jobs on the shared cluster (``request`` gets it) and cancels what it
    left pending, which would otherwise hold the cluster's CPUs."""
    base = tmp_path_factory.mktemp(f"{name}-{database}")
    with ExitStack() as stack:
        url = None
        if database in ("postgresql", "ray"):
            url = stack.enter_context(fresh_database("postgresql", base)).url
        if database == "ray":
            assert request is not None, "a Ray server needs the test's request for the cluster"
            cluster = request.getfixturevalue("shared_ray_cluster")
            options["extra_args"] = [*ray_server_args(cluster), *options.get("extra_args", [])]
            options["extra_env"] = {**options.get("extra_env", {}), **ray_server_env()}
        server = stack.enter_context(running_server(base, database_url=url, **options))
        if database == "ray":
            stack.callback(cancel_pending, server)
        yield server
