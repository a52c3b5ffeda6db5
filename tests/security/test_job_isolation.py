"""A job's own root, scratch and cgroup, through a real server on SQLite, PostgreSQL and Ray.

No host Unix socket is reachable (by path, in any host directory, created before or after the
job's worker, nor abstract); the job writes only to its own empty tmpfs, which goes with it;
and its limits hold over all its processes, in a cgroup of its own that is removed afterwards.
This machine mounts cgroup v1 ``memory``, ``pids`` and ``cpu``: the cgroups here are real.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qruntime.execution.jobs_root import PREFIX as JOBS_ROOT_PREFIX
from repo_paths import installation_names_in_tmp
from security.database_servers import BACKINGS, server_on
from server_harness import ServerProcess
from server_support import clients_for, submit, upload, wait_for_job, wait_until

MiB = 1024 * 1024
UID_BASE = 400_000 + (os.getpid() % 500) * 100
JOB_MEMORY = 384 * MiB
SCRATCH = 32 * MiB
MAX_PROCESSES = 48
CPU_WEIGHT = 50


@pytest.fixture(scope="module", params=BACKINGS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "QRUNTIME_SANDBOX_UID_BASE": str(UID_BASE + 30 * BACKINGS.index(request.param)),
        "QRUNTIME_SANDBOX_MAX_JOB_MEMORY_BYTES": str(JOB_MEMORY),
        "QRUNTIME_SANDBOX_MAX_SCRATCH_BYTES": str(SCRATCH),
        "QRUNTIME_SANDBOX_MAX_FILE_BYTES": str(4 * SCRATCH),
        "QRUNTIME_SANDBOX_MAX_PROCESSES": str(MAX_PROCESSES),
        "QRUNTIME_SANDBOX_CPU_WEIGHT": str(CPU_WEIGHT),
    }
    with server_on(
        request.param, tmp_path_factory, "isolation", request=request, extra_env=env
    ) as server:
        yield server


@pytest.fixture(scope="module")
def user(server: ServerProcess) -> Iterator[httpx.Client]:
    with clients_for(server) as clients:
        yield clients.user(f"i{uuid.uuid4().hex[:8]}")


def job_runners(server: ServerProcess) -> list[int]:
    """The processes that own the jobs' warm workers: the server, or on Ray each node's agent
    (once both have reported their sandbox)."""
    executor = server.health()["executor"]
    if executor["kind"] != "ray":
        return [server.process.pid]

    def agents() -> list[int]:
        found = server.health()["executor"]["agents"]
        ready = [a for a in found if a["sandbox"].get("enabled") and a["pool"].get("idle_pids")]
        return [a["pid"] for a in ready] if len(ready) == 2 else []

    return wait_until(agents, timeout=120, what="both Ray agents' warm pools", server=server)


def run(client: httpx.Client, server: ServerProcess, module: str, inputs=None) -> dict:
    program = upload(client, f"isolation/{module}", name=module.replace("_", "-"))["id"]
    job = submit(client, program, inputs or {})
    return wait_for_job(client, job["id"], timeout=180, server=server)


def result(client: httpx.Client, job: dict) -> Any:
    assert job["status"] == "DONE", job
    return client.get(f"/jobs/{job['id']}/results").json()


def test_the_server_reports_the_jobs_root_scratch_sockets_and_cgroup(server):
    job_runners(server)
    protections = server.health()["sandbox"]["protections"]
    by_name = {p["name"]: p for p in protections}

    for name in ("hidden server files", "private scratch", "no host sockets", "per-job cgroup"):
        assert by_name[name]["active"] is True, by_name[name]
    assert f"{SCRATCH} B" in by_name["private scratch"]["detail"]
    cgroup = by_name["per-job cgroup"]["detail"]
    assert f"memory {JOB_MEMORY} B" in cgroup and f"{MAX_PROCESSES} processes" in cgroup, cgroup


# --- host sockets ------------------------------------------------------------------------------


@contextlib.contextmanager
def listeners(paths: list[str], abstract: str) -> Iterator[list[str]]:
    """Unix stream listeners that anyone may connect to; yields what connected."""
    accepted: list[str] = []
    socks = []
    for address in [*paths, "\0" + abstract]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address)
        if not address.startswith("\0"):
            os.chmod(address, 0o777)
        sock.listen()
        sock.settimeout(0.2)
        socks.append(sock)
    stop = threading.Event()

    def accept(sock: socket.socket) -> None:
        while not stop.is_set():
            try:
                connection, _ = sock.accept()
            except TimeoutError:
                continue
            accepted.append(str(sock.getsockname()))
            connection.close()

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in socks]
    for thread in threads:
        thread.start()
    try:
        yield accepted
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in socks:
            sock.close()
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)


def test_no_host_unix_socket_is_reachable_by_path_or_abstract_name(server, user):
    """Listeners made after the server (and its idle, already sandboxed workers) started."""
    token = secrets.token_hex(6)
    own_dir = Path("/srv") / f"qrt-{token}"
    own_dir.mkdir(mode=0o755)
    paths = [
        f"/run/qrt-{token}.sock",
        f"/var/run/qrt-{token}-var.sock",
        f"/tmp/qrt-{token}.sock",
        f"/var/tmp/qrt-{token}.sock",
        f"/dev/shm/qrt-{token}.sock",
        str(own_dir / "listener.sock"),
        str(server.data_dir / f"qrt-{token}.sock"),
    ]
    try:
        with listeners(paths, f"qrt-{token}") as accepted:
            job = run(user, server, "unix_sockets", {"paths": paths, "abstract": f"qrt-{token}"})
            outcome = result(user, job)
        assert all(value.startswith("refused") for value in outcome.values()), outcome
        assert len(outcome) == len(paths) + 1, outcome
        assert accepted == []
    finally:
        own_dir.rmdir()


# --- scratch -----------------------------------------------------------------------------------


def files_of(uid: int, roots=("/tmp", "/var/tmp", "/dev/shm")) -> list[str]:
    found = []
    for root in roots:
        for directory, subdirs, files in os.walk(root):
            for name in subdirs + files:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if os.lstat(path).st_uid == uid:
                        found.append(path)
    return found


def test_every_job_starts_with_empty_scratch_that_goes_with_it(server, user):
    first = result(user, run(user, server, "scratch"))
    second = result(user, run(user, server, "scratch"))

    for outcome in (first, second):
        # Nothing of any earlier job: the working directory and /tmp etc. are empty.
        assert outcome["seen"]["."] == [], outcome
        assert outcome["seen"]["/var/tmp"] == [] and outcome["seen"]["/dev/shm"] == [], outcome
        # Only the path down to its own directory, and the installation where it lives in /tmp.
        listed = set(outcome["seen"]["/tmp"]) - installation_names_in_tmp()
        assert all(name.startswith(JOBS_ROOT_PREFIX) for name in listed), outcome
        assert all(w.startswith("refused: Read-only") for w in outcome["writes"].values())
        assert "run" not in outcome["root"] and "home" not in outcome["root"], outcome
    for outcome in (first, second):
        assert files_of(outcome["uid"]) == []  # nothing of the job's uid on the host


def test_the_scratch_cap_covers_all_scratch_places_together(server, user):
    job = run(user, server, "scratch", {"megabytes": 2 * SCRATCH // MiB})

    assert job["status"] == "ERROR", job
    assert "No space left on device" in job["error_message"], job
    assert "QRUNTIME_SANDBOX_MAX_SCRATCH_BYTES" in job["error_message"], job
    assert f"limited to {SCRATCH} bytes" in job["error_message"], job


def test_job_directories_do_not_pile_up(server, tmp_path):
    """One jobs directory per server, locked; a dead server's is removed by the next start."""
    for pid in job_runners(server):
        mine = [p for p in Path("/tmp").glob(f"{JOBS_ROOT_PREFIX}p{pid}-*")]
        assert len(mine) == 1, mine
        assert all(not any(job.iterdir()) for job in mine[0].iterdir())  # host side stays empty
    stale = Path("/tmp") / f"{JOBS_ROOT_PREFIX}p999999999-{secrets.token_hex(3)}"
    (stale / "job-left").mkdir(parents=True)
    base = tmp_path / "another"
    with server_on("sqlite", _Factory(base), "pile-up"):
        assert not stale.exists()


class _Factory:
    """A ``tmp_path_factory`` stand-in for one more server."""

    def __init__(self, base: Path):
        self.base = base

    def mktemp(self, name: str) -> Path:
        path = self.base / name
        path.mkdir(parents=True)
        return path


# --- cgroups -----------------------------------------------------------------------------------


def test_memory_is_capped_over_all_of_a_jobs_processes(server, user):
    """Five children of 150 MB each, every one far under the per-process limit."""
    job = run(user, server, "many_children", {"children": 5, "megabytes": 150})

    assert job["status"] == "ERROR", job
    assert "QRUNTIME_SANDBOX_MAX_JOB_MEMORY_BYTES" in job["error_message"], job
    assert f"{JOB_MEMORY} bytes over all its processes" in job["error_message"], job


def test_threads_and_processes_are_capped_per_job(server, user):
    job = run(user, server, "many_children", {"threads": 2 * MAX_PROCESSES})

    assert job["status"] == "ERROR", job
    assert "QRUNTIME_SANDBOX_MAX_PROCESSES" in job["error_message"], job
    assert f"limit of {MAX_PROCESSES} processes" in job["error_message"], job


def test_each_job_runs_in_a_cgroup_of_its_own_removed_afterwards(server, user):
    program = upload(user, "isolation/scratch", name="scratch")["id"]
    job = submit(user, program, {})
    interims = wait_until(
        lambda: user.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"],
        what="the job's report of its cgroups",
        server=server,
    )
    wait_for_job(user, job["id"], server=server)
    cgroups = dict(line.split(":", 2)[1:] for line in interims[0]["data"]["cgroups"])

    memory, pids, cpu = cgroups["memory"], cgroups["pids"], cgroups["cpu"]
    for path in (memory, pids, cpu):
        assert "/qruntime-" in path and path.rsplit("/", 1)[1].startswith("job-"), cgroups
    left = [
        Path("/sys/fs/cgroup", controller, path.lstrip("/"))
        for controller, path in (("memory", memory), ("pids", pids), ("cpu", cpu))
    ]
    # Removed once the job's last process is gone, which may be just after its outcome.
    wait_until(lambda: not any(p.exists() for p in left), what=f"{left} removed", timeout=15)


def test_job_cgroups_carry_the_configured_caps(server):
    """The idle warm workers wait in their jobs' cgroups already, caps set."""
    cgroups = Path("/sys/fs/cgroup")
    waiting = [
        wait_until(
            lambda pid=pid: list(cgroups.glob(f"cpu/qruntime-{pid}-*/job-*")),
            what="idle workers' cgroups",
        )
        for pid in job_runners(server)
    ]
    for cpu in (path for paths in waiting for path in paths):
        assert int((cpu / "cpu.shares").read_text()) == CPU_WEIGHT * 1024 // 100
        pids = cgroups / "pids" / cpu.parent.name / cpu.name
        assert int((pids / "pids.max").read_text()) == MAX_PROCESSES
        (memory,) = cgroups.glob(f"memory/**/{cpu.parent.name}/{cpu.name}")
        assert int((memory / "memory.limit_in_bytes").read_text()) == JOB_MEMORY
