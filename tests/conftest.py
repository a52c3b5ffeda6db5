"""Shared fixtures: fixture programs, the installed CLI, and clients of a module's ``server``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ray_cluster import RayCluster, ray_cluster
from repo_paths import PROGRAMS, QRUNTIME, REPO
from server_harness import ServerProcess
from server_support import Clients, clients_for

ACCEPTANCE = REPO / "tests" / "acceptance"
_client_builds: list[subprocess.Popen[bytes]] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build the other clients' venvs (minutes of pip, cached) alongside the suite instead of
    inside the first test that needs one; that test waits on the build's lock if it is not done."""
    if hasattr(session.config, "workerinput") or not _runs_acceptance(session.config.args):
        return  # an xdist worker (its controller starts the build), or no client test in the run
    build = [sys.executable, str(ACCEPTANCE / "client_venvs.py")]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    _client_builds.append(subprocess.Popen(build, start_new_session=True, **quiet))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A build still running when the run ends is stopped; the next run starts it afresh."""
    for build in _client_builds:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGTERM)
            build.wait()


def _runs_acceptance(args: list[str]) -> bool:
    for arg in args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == ACCEPTANCE or ACCEPTANCE in path.parents or path in ACCEPTANCE.parents:
            return True
    return False


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
