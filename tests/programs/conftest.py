"""Run catalogue programs both ways: in-process through ``qruntime.testing`` and on a real server.

Every test that takes the ``run`` fixture runs twice, so each assertion about a program's
result holds for the in-process run and for a job submitted through the SDK to a server that
the catalogue was published to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qruntime import RuntimeService
from qruntime.testing import run_program
from server_harness import ServerProcess

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "runtime"
JOB_TIMEOUT = 240.0


@dataclass(frozen=True)
class Outcome:
    """A program's final result and its interim results, in order."""

    result: Any
    messages: list[Any]


Runner = Callable[..., Outcome]


def catalogue_file(name: str) -> Path:
    """``runtime/<module>.py`` for a program name."""
    return CATALOGUE / f"{name.replace('-', '_')}.py"


@pytest.fixture(scope="session")
def catalogue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server started as the README says: publishing ``runtime/`` at start."""
    base = tmp_path_factory.mktemp("catalogue-server")
    server = ServerProcess(
        data_dir=base / "data",
        accounts_file=base / "accounts.json",
        extra_args=["--catalogue", str(CATALOGUE)],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def researcher(catalogue_server: ServerProcess) -> Iterator[RuntimeService]:
    """An ordinary user of the catalogue server: public programs only."""
    with RuntimeService(catalogue_server.url, catalogue_server.admin_token) as admin:
        token = admin.users.create("researcher").token
    with RuntimeService(catalogue_server.url, token) as service:
        yield service


def _in_process(name: str, inputs: dict[str, Any], backend: str = "aer_simulator") -> Outcome:
    run = run_program(catalogue_file(name), inputs, backend=backend)
    return Outcome(run.result, run.messages)


@pytest.fixture(params=["in_process", "server"])
def run(request: pytest.FixtureRequest) -> Runner:
    """``run(name, inputs, backend="aer_simulator") -> Outcome``, once per way of running."""
    if request.param == "in_process":
        return _in_process
    service: RuntimeService = request.getfixturevalue("researcher")

    def on_server(name: str, inputs: dict[str, Any], backend: str = "aer_simulator") -> Outcome:
        job = service.run(program_id=name, options={"backend_name": backend}, inputs=inputs)
        result = job.result(timeout=JOB_TIMEOUT)
        return Outcome(result, job.interim_results())

    return on_server
