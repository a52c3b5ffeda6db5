"""The sweep through a job's real v1 cgroup (``tasks``) instead of a ``/proc`` scan: the same
processes found as by the scan, and killed (needs root for the cgroup and the uid change)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qruntime.domain.events import ResultEvent
from qruntime.execution import JobRequest, LocalExecutor, LocalExecutorConfig, job_users
from qruntime.execution.job_cgroups import CgroupLimits, JobCgroups, detect
from qruntime.execution.job_users import job_processes, kill_user_processes, processes_in
from qruntime.execution.sandbox import SandboxConfig
from qruntime.execution.warm_pool import WarmPoolConfig

UID = 61_997
LIMITS = CgroupLimits(memory_bytes=256 * 1024**2, max_processes=64)


@pytest.fixture
def tasks() -> Iterator[tuple[str, tuple[str, ...]]]:
    """A job cgroup of a v1 hierarchy this process may create, and its ``tasks`` file."""
    if os.geteuid() != 0:
        pytest.skip("creating a cgroup and starting a process as another uid")
    cgroups, why = detect(LIMITS)
    if cgroups is None or cgroups.version != 1:
        if cgroups is not None:
            cgroups.close()
        pytest.skip(f"no v1 job cgroups here: {why}")
    procs = cgroups.create("sweep-test")
    path = cgroups.tasks_file("sweep-test")
    assert path is not None
    yield path, procs
    cgroups.close()


def _start_in(procs: tuple[str, ...], script: str) -> subprocess.Popen[bytes]:
    """As the worker does: join the cgroup first, then become the job's uid."""

    def join() -> None:
        for path in procs:
            with open(path, "w") as handle:
                handle.write(str(os.getpid()))
        os.setgroups([])
        os.setresgid(UID, UID, UID)
        os.setresuid(UID, UID, UID)

    return subprocess.Popen(["/bin/sh", "-c", script], preexec_fn=join)


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_cgroup_finds_what_the_scan_finds_also_outside_the_process_group(tasks) -> None:
    path, procs = tasks
    process = _start_in(procs, "setsid sleep 30 & exec sleep 30")
    try:
        _wait_for(lambda: len(job_users.processes_of(UID)) == 2)
        assert sorted(processes_in(path)) == sorted(job_users.processes_of(UID))
        assert len(processes_in(path)) == 2
        assert process.pid in processes_in(path)
        assert kill_user_processes(UID, cgroup_tasks=path) is True
        process.wait(timeout=10)
        assert processes_in(path) == []
        _wait_for(lambda: job_users.processes_of(UID) == [])
        assert job_users.processes_of(UID) == []
    finally:
        process.kill()
        process.wait()


def test_a_killed_process_in_the_cgroup_counts_as_gone(tasks) -> None:
    path, procs = tasks
    process = _start_in(procs, "exec sleep 30")
    try:
        _wait_for(lambda: processes_in(path) == [process.pid])
        assert processes_in(path) == [process.pid]
        os.kill(process.pid, signal.SIGSTOP)  # stopped: SIGKILL stays visible a little longer
        os.kill(process.pid, signal.SIGKILL)
        assert processes_in(path) == []
    finally:
        process.kill()
        process.wait()


_MAIN_THREAD_EXITS = """
import ctypes, os, sys, threading, time
ctypes.CDLL("libgcc_s.so.1")  # pthread_exit unwinds with it; loaded before the uid changes
for path in sys.argv[1:]:
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
os.setgid({uid})
os.setuid({uid})
threading.Thread(target=lambda: (time.sleep(30), os._exit(0))).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_ended_is_found_by_its_other_thread(tasks) -> None:
    path, procs = tasks
    code = _MAIN_THREAD_EXITS.format(uid=UID)
    process = subprocess.Popen([sys.executable, "-c", code, *procs], start_new_session=True)
    try:
        _wait_for(lambda: _state(process.pid) == "Z", timeout=30)
        assert _state(process.pid) == "Z"
        assert processes_in(path) == [process.pid]
        assert kill_user_processes(UID, cgroup_tasks=path) is True
        assert processes_in(path) == []
    finally:
        process.kill()
        process.wait()


def test_the_cgroup_is_read_instead_of_proc_and_an_unreadable_one_scans(
    tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = tasks
    scans: list[int] = []
    monkeypatch.setattr(job_users, "processes_of", lambda uid: scans.append(uid) or [])
    assert job_processes(UID, path) == []
    assert scans == []
    assert job_processes(UID, path + ".gone") == []
    assert job_processes(UID, None) == []
    assert scans == [UID, UID]


async def test_after_a_job_the_sweep_reads_its_cgroup_and_kills_what_left_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a uid and a cgroup per job need root")
    config = LocalExecutorConfig(
        sandbox=SandboxConfig(hidden_paths=(Path.home(),)), pool=WarmPoolConfig(size=1)
    )
    executor = LocalExecutor(config)
    cgroups = executor._placement.cgroups
    if cgroups is None or cgroups.version != 1:
        await executor.aclose()
        pytest.skip("no v1 job cgroups here")
    scanned: list[int] = []
    scan = job_users.processes_of
    monkeypatch.setattr(job_users, "processes_of", lambda uid: scanned.append(uid) or scan(uid))
    source = """
        import os, subprocess
        def main(backend, user_messenger):
            subprocess.Popen(["sleep", "60"], start_new_session=True)
            return os.getuid()
    """
    request = JobRequest(
        job_id=f"job-{uuid.uuid4().hex[:12]}",
        source=textwrap.dedent(source),
        backend_name="aer_simulator",
        max_execution_time=60,
    )
    try:
        await executor.start()
        for _ in range(600):  # the idle worker's uid was scanned once, when it was acquired
            if executor.pool_status()["idle_pids"]:
                break
            await asyncio.sleep(0.05)
        scanned.clear()
        events = [event async for event in executor.run(request)]
        assert isinstance(events[-1], ResultEvent), events[-1]
        uid = int(events[-1].data)
        assert uid not in scanned  # the sweep read the job's cgroup, not /proc
        assert scan(uid) == []  # and it is as complete: the setsid child is gone too
    finally:
        await executor.aclose()


def test_v2_cgroups_have_no_tasks_file_to_read(tmp_path) -> None:
    """On v2 the sweep keeps scanning ``/proc`` (docs/security.md says why)."""
    cgroups = JobCgroups(2, {"unified": tmp_path}, LIMITS)
    cgroups._made["job"] = (str(tmp_path / "job" / "cgroup.procs"),)
    assert cgroups.tasks_file("job") is None


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]
