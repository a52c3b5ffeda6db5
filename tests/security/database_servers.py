"""Servers for the security tests that must hold on both databases (SQLite, then PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from integration.storage_support import fresh_database
from server_harness import ServerProcess
from server_support import running_server

DATABASES = ["sqlite", "postgresql"]


@contextmanager
def server_on(
    database: str, tmp_path_factory: pytest.TempPathFactory, name: str, **options: Any
) -> Iterator[ServerProcess]:
    """A started server on a fresh database of the given kind (PostgreSQL ones are dropped)."""
    base = tmp_path_factory.mktemp(f"{name}-{database}")
    with ExitStack() as stack:
        url = None
        if database == "postgresql":
            url = stack.enter_context(fresh_database("postgresql", base)).url
        yield stack.enter_context(running_server(base, database_url=url, **options))
