"""The seed's quickstart, verbatim but for the login line and backend, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from server_harness import ServerProcess

REPO = Path(__file__).resolve().parents[2]
#: The quickstart block of ../shared/seeds/runtime-programs-repo-readme.md, copied verbatim.
SEED = REPO / "tests" / "fixtures" / "seeds" / "quickstart_seed.py.txt"


@pytest.fixture
def server(tmp_path: Path):
    """The README's first command: a server that publishes the catalogue in runtime/."""
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "accounts.json",
        extra_args=["--catalogue", str(REPO / "runtime")],
    )
    server.start()
    yield server
    server.stop()


def run_example(server: ServerProcess, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"examples/{name}"],
        cwd=REPO,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_quickstart_differs_from_the_seed_only_in_login_backend_and_printing_the_result():
    seed = SEED.read_text().splitlines()
    ours = (REPO / "examples" / "quickstart.py").read_text().splitlines()
    assert ours[len(seed) :] == [
        "",
        "# Print the result (the one line not in the seed, which fetched it without printing it)",
        "print(result)",
    ]
    changed = [(a, b) for a, b in zip(seed, ours[: len(seed)], strict=True) if a != b]
    assert changed == [
        ("from qiskit import IBMQ", "from qruntime import load_account"),
        ("provider = IBMQ.load_account()", "provider = load_account()"),
        (
            "options = {'backend_name': 'ibmq_montreal'}",
            "options = {'backend_name': 'fake_montreal'}",
        ),
    ]


def test_quickstart_runs_against_a_fresh_server(server: ServerProcess):
    prepared = run_example(server, "prepare_quickstart.py")
    assert prepared.returncode == 0, prepared.stderr + server.log()

    done = run_example(server, "quickstart.py")

    assert done.returncode == 0, done.stderr + server.log()
    lines = done.stdout.splitlines()
    assert lines[-1] == "All done!"  # the result, printed
    assert re.fullmatch(r"sample-program-[a-z0-9]{6}", lines[0])
    uploaded = lines[0]
    assert f"{uploaded}:" in lines and "sample-program:" in lines  # pprint_programs
    assert "  Max execution time: 300" in lines  # print(program(...))
    assert "    Minimum number of qubits: 5" in lines
    interims = [line for line in lines if line.startswith("{'iteration'")]
    assert [line.split(",")[0] for line in interims] == ["{'iteration': 0", "{'iteration': 1"]
    assert any(line.startswith("JobStatus.") for line in lines)

    with server.client() as client:
        assert client.get("/programs/id-to-delete").status_code == 404
        assert client.get(f"/programs/{uploaded}").status_code == 200
        jobs = client.get("/jobs", params={"program_id": "sample-program"}).json()["jobs"]
        assert [job["status"] for job in jobs] == ["DONE"]
        assert jobs[0]["backend"] == "fake_montreal"
        assert client.get(f"/jobs/{jobs[0]['id']}/results").json() == "All done!"

    again = run_example(server, "prepare_quickstart.py")  # the README's two commands, again
    assert f"removed {uploaded}, left by an earlier quickstart run" in again.stdout, again.stderr
    assert run_example(server, "quickstart.py").returncode == 0
    with server.client() as client:
        programs = client.get("/programs", params={"limit": 100}).json()["programs"]
        copies = [p["id"] for p in programs if p["name"] == "sample-program"]
        assert len(copies) == 2, copies  # the catalogue's and one upload: no pile of them
