"""A server starts and serves its own API without loading Qiskit: seconds of CPU per start that
only jobs (in the zygote) and the IBM clients' translations (on first use) need."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from server_harness import ServerProcess
from server_support import clients_for

HEAVY = ("/qiskit/", "/qiskit_aer/", "/numpy/", "/scipy/")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("imports")
    server = ServerProcess(root / "data", root / "accounts.json").start()
    try:
        with clients_for(server) as clients:  # backend descriptions cached, as after any listing
            assert clients.admin.get("/backends").status_code == 200
        server.stop()
        yield server.start()
    finally:
        server.stop()


def loaded_heavy_libraries(pid: int) -> set[str]:
    """Compiled extensions of Qiskit, Aer, numpy or scipy mapped into the process."""
    with open(f"/proc/{pid}/maps") as maps:
        paths = {line.split()[-1] for line in maps if line.rstrip().endswith(".so")}
    return {path for path in paths if any(part in path for part in HEAVY)}


@pytest.mark.skipif(
    any(node.startswith(("nvidia", "kfd")) for node in os.listdir("/dev")),
    reason="with a GPU's device node the server asks Aer whether it can use it",
)
def test_the_server_serves_its_api_without_loading_qiskit(server: ServerProcess) -> None:
    assert server.process is not None
    with clients_for(server) as clients:
        for path in ("/health", "/backends", "/programs", "/jobs"):
            assert clients.admin.get(path).status_code == 200, path
            assert loaded_heavy_libraries(server.process.pid) == set(), path


def test_the_check_sees_libraries_that_are_loaded() -> None:
    import numpy  # noqa: F401  (this test process has it)

    assert any("/numpy/" in path for path in loaded_heavy_libraries(os.getpid()))
