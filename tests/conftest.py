"""Shared fixtures: fixture programs, the installed CLI, and clients of a module's ``server``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ray_cluster import RayCluster, ray_cluster
from repo_paths import PROGRAMS, QRUNTIME
from server_harness import ServerProcess
from server_support import Clients, clients_for


@pytest.fixture(scope="session")
def shared_ray_cluster() -> Iterator[RayCluster]:
    """One two-node Ray cluster for every test of this test process that runs jobs on Ray
    (each server has agents of its own there); started on first use."""
    with ray_cluster() as cluster:
        yield cluster


@pytest.fixture
def programs() -> Path:
    return PROGRAMS


@pytest.fixture
def qruntime_cli():
    """Run the installed ``qruntime`` command as a user would; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [QRUNTIME, *map(str, args)], capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.fixture(scope="module")
def clients(server: ServerProcess) -> Iterator[Clients]:
    """Authenticated clients of the ``server`` fixture the test module defines."""
    with clients_for(server) as clients:
        yield clients


@pytest.fixture(scope="module")
def admin(clients: Clients) -> httpx.Client:
    return clients.admin


@pytest.fixture(scope="module")
def alice(clients: Clients) -> httpx.Client:
    return clients.user("alice")
