"""Hostile programs through a real server: each attack fails and says so, nothing leaks.

One program per attack (tests/fixtures/programs/hostile/), all submitted by an ordinary user
to one server with two job slots, next to a well-behaved job. Every job must end in a clear
terminal state with a message; the server stays healthy; no secret reaches a result or a log.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from executors import EXECUTORS, started_server
from qruntime.execution.job_users import processes_of
from qruntime.execution.sandbox import exposed_paths
from server_harness import ServerProcess
from server_support import clients_for, submit, upload, wait_for_job, wait_until

CANARY = f"canary-{secrets.token_hex(8)}"
UID_BASE = 300_000 + (os.getpid() % 500) * 100
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_INTERIMS = 2000


@pytest.fixture(scope="module", params=EXECUTORS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp(f"hostile-{request.param}")
    env = {
        "QRUNTIME_SECRET_CANARY": CANARY,
        "QRUNTIME_SANDBOX_UID_BASE": str(UID_BASE),
        "QRUNTIME_SANDBOX_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
        "QRUNTIME_MAX_INTERIM_RESULTS": str(MAX_INTERIMS),
    }
    with ExitStack() as stack:
        yield started_server(request, base, stack, env)


@pytest.fixture(scope="module")
def mallory(server: ServerProcess) -> Iterator[httpx.Client]:
    with clients_for(server) as clients:
        yield clients.user("mallory")


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[str, int, list[Any]]]:
    """A TCP listener on 127.0.0.2 that records any connection made to it."""
    accepted: list[Any] = []
    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))
    sock.listen()
    sock.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[1])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield "127.0.0.2", sock.getsockname()[1], accepted
    stop.set()
    thread.join()
    sock.close()


def hostile(client: httpx.Client, module: str, **metadata: Any) -> str:
    """Upload tests/fixtures/programs/hostile/<module>.py as the caller; returns its id."""
    name = f"hostile-{module.replace('_', '-')}"
    return upload(client, f"hostile/{module}", name=name, **metadata)["id"]


def run(client: httpx.Client, server: ServerProcess, module: str, inputs=None, **extra) -> dict:
    job = submit(client, hostile(client, module), inputs or {}, **extra)
    return wait_for_job(client, job["id"], timeout=240, server=server)


def secrets_of(server: ServerProcess) -> list[str]:
    return [CANARY, server.admin_token, "SQLite format 3"]


def everything_about(client: httpx.Client, job: dict) -> str:
    """The job as its owner can see it: record, result, interim results and logs."""
    parts = [str(job)]
    for path in ("results", "interim_results", "logs"):
        parts.append(client.get(f"/jobs/{job['id']}/{path}").text)
    return "\n".join(parts)


def assert_clean(client: httpx.Client, server: ServerProcess, job: dict) -> None:
    text = everything_about(client, job)
    for secret in secrets_of(server):
        assert secret not in text, f"{secret[:12]}... leaked through job {job['id']}"
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def result(client: httpx.Client, job: dict) -> Any:
    assert job["status"] == "DONE", job
    return client.get(f"/jobs/{job['id']}/results").json()


def test_the_server_reports_every_protection_active(server: ServerProcess):
    def reported() -> dict[str, Any] | None:  # a Ray server's agents report once started
        sandbox = server.health()["sandbox"]
        return sandbox if sandbox["protections"] else None

    sandbox = wait_until(reported, what="the sandbox report", server=server)
    assert sandbox["enabled"] is True
    assert {p["name"]: p["active"] for p in sandbox["protections"]} == {
        "separate user": True,
        "hidden server files": True,
        "private scratch": True,
        "no host sockets": True,
        "no network": True,
        "per-job cgroup": True,
        "resource limits": True,
        "environment allow-list": True,
        "private working directory": True,
    }


def test_the_database_tokens_and_data_dir_cannot_be_read(server, mallory):
    paths = [
        str(server.data_dir / "qruntime.db"),
        str(server.data_dir / "admin-token"),
        str(server.accounts_file),
        str(server.data_dir),
    ]
    home = Path.home()
    job = run(mallory, server, "read_files", {"paths": [*paths, str(home)]})

    outcome = result(mallory, job)
    seen_home = outcome.pop(str(home))
    assert all(value.startswith("denied") for value in outcome.values()), outcome
    # The home directory is an empty tmpfs but for the Python installation mounted back.
    python_dirs = {Path(p).relative_to(home).parts[0] for p in exposed_paths() if under(p, home)}
    listed = set(seen_home.removeprefix("listed: ").split(",")) - {""}
    assert seen_home.startswith("listed") and listed <= python_dirs, (seen_home, python_dirs)
    assert_clean(mallory, server, job)


def under(path: str, directory: Path) -> bool:
    return Path(path).is_relative_to(directory) and Path(path) != directory


def test_the_servers_environment_is_out_of_reach(server, mallory):
    job = run(mallory, server, "environment", {"server_pid": server.process.pid})

    outcome = result(mallory, job)
    assert outcome[f"/proc/{server.process.pid}/environ"].startswith("denied"), outcome
    assert outcome[f"/proc/{server.process.pid}/cmdline"].startswith("denied"), outcome
    assert outcome["/proc/1/environ"].startswith("denied"), outcome
    assert not any(name.startswith("QRUNTIME") for name in outcome["own_environment"])
    assert set(outcome["own_environment"]) <= {
        *("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR"),
        *("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"),
        *("QISKIT_NUM_PROCS", "QISKIT_PARALLEL", "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE"),
    }
    assert server.process.pid not in outcome["visible_pids"]
    assert_clean(mallory, server, job)


def test_other_jobs_directories_and_processes_are_out_of_reach(server, mallory):
    with clients_for(server) as clients:
        victim_client = clients.user("victor")
        victim_secret = secrets.token_hex(8)
        victim = submit(victim_client, hostile(victim_client, "victim"), {"secret": victim_secret})
        seen = wait_for_job(victim_client, victim["id"], ("RUNNING",), server=server)
        interims = []
        while not interims:
            interims = victim_client.get(f"/jobs/{seen['id']}/interim_results").json()
            interims = interims["interim_results"]
        where = interims[0]["data"]

        job = run(
            mallory,
            server,
            "other_jobs",
            {"victim_dir": where["cwd"], "victim_pid": where["pid"]},
        )

        outcome = result(mallory, job)
        assert all(value.startswith("denied") for value in outcome.values()), outcome
        assert victim_secret not in everything_about(mallory, job)
        assert get_status(victim_client, victim["id"]) == "RUNNING"  # untouched
        victim_client.post(f"/jobs/{victim['id']}/cancel")


def get_status(client: httpx.Client, job_id: str) -> str:
    return client.get(f"/jobs/{job_id}").json()["status"]


def test_no_network_not_even_loopback(server, mallory, listener):
    host, port, accepted = listener
    targets = [["127.0.0.1", server.port], [host, port]]

    job = run(mallory, server, "network", {"targets": targets})

    outcome = result(mallory, job)
    assert all(value.startswith("refused") for value in outcome.values()), outcome
    assert accepted == []


def test_a_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(server, mallory):
    job = run(mallory, server, "fork_bomb")

    outcome = result(mallory, job)
    assert 0 < outcome["forks"] < 300, outcome
    assert "Resource temporarily unavailable" in outcome["stopped_by"], outcome
    # The job's own uid: the warm pool's idle workers wait under other uids of the range.
    assert UID_BASE <= outcome["uid"] < UID_BASE + 16, outcome
    leftovers = processes_of(outcome["uid"])
    assert leftovers == [], leftovers  # also those that left the process group
    assert_clean(mallory, server, job)


@pytest.mark.parametrize(
    ("module", "words"),
    [
        ("memory", ["MemoryError"]),
        ("big_file", ["OSError", "File too large"]),
        ("kill_server", ["PermissionError"]),
        ("flood_interims", ["more than 2000 interim results", "QRUNTIME_MAX_INTERIM_RESULTS"]),
    ],
)
def test_attacks_that_fail_inside_the_program(server, mallory, module, words):
    job = run(mallory, server, module)

    assert job["status"] == "ERROR", job
    assert job["reason"] == "PROGRAM FAILED", job
    assert all(word in job["error_message"] for word in words), job["error_message"]
    assert_clean(mallory, server, job)


def test_a_result_over_the_limit_is_refused_with_the_limit_named(server, mallory):
    big = run(mallory, server, "huge_result", {"megabytes": 100})
    huge = run(mallory, server, "huge_result")  # 2 GB: past the memory limit before the wire

    assert big["status"] == "ERROR", big
    assert "over the server's limit of 67108864 bytes" in big["error_message"], big
    assert "QRUNTIME_MAX_RESULT_BYTES" in big["error_message"], big
    assert huge["status"] == "ERROR", huge
    assert "MemoryError" in huge["error_message"], huge
    for job in (big, huge):
        assert_clean(mallory, server, job)


def test_spinning_forever_ends_at_the_time_limit(server, mallory):
    job = run(mallory, server, "spin", max_execution_time=3)

    assert job["status"] == "CANCELLED", job
    assert job["reason"] == "RAN TOO LONG", job
    assert_clean(mallory, server, job)


@pytest.mark.parametrize(
    ("module", "words"),
    [
        ("pipe_garbage", ["PROTOCOL VIOLATION", "invalid data"]),
        ("pipe_close", ["PROCESS CRASHED", "event pipe was closed"]),
    ],
)
def test_breaking_the_event_pipe_ends_in_error(server, mallory, module, words):
    job = run(mallory, server, module)

    assert job["status"] == "ERROR", job
    assert words[0] == job["reason"], job
    assert words[1] in job["error_message"], job
    assert_clean(mallory, server, job)


def test_two_gigabytes_of_output_keep_only_the_newest_megabyte(server, mallory):
    job = run(mallory, server, "flood_stdout")

    assert result(mallory, job) == "printed 2 GB"
    logs = mallory.get(f"/jobs/{job['id']}/logs").text
    assert logs.startswith("[qruntime: earlier output was dropped")
    assert logs.rstrip("\n").endswith("the last line")
    assert len(logs.encode()) < 1024 * 1024 + 4096
    assert_clean(mallory, server, job)


def test_well_behaved_jobs_run_alongside(server, mallory):
    with clients_for(server) as clients:
        alice = clients.user("alice")
        program = upload(alice, "hello_world")["id"]
        job = wait_for_job(alice, submit(alice, program, {"iterations": 2})["id"], server=server)
    assert job["status"] == "DONE", job
