"""The per-uid process scan and sweep against real processes (needs root to change uid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qruntime.execution import job_users
from qruntime.execution.job_users import UidPool, is_dying, kill_user_processes, processes_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another uid")

UID = 61_999


def _start_as(uid: int, script: str) -> subprocess.Popen[bytes]:
    """A shell, not Python: this Python may live where another uid cannot read it."""
    return subprocess.Popen(["/bin/sh", "-c", script], user=uid, group=uid, extra_groups=[])


def test_scan_finds_live_processes_of_the_uid_only() -> None:
    process = _start_as(UID, "exec sleep 30")
    try:
        assert processes_of(UID) == [process.pid]
        assert process.pid not in processes_of(os.getuid())
        assert os.getpid() in processes_of(os.getuid())
    finally:
        process.kill()
        process.wait()
    assert processes_of(UID) == []


def test_scan_skips_zombies() -> None:
    process = _start_as(UID, "exit 0")
    deadline = time.monotonic() + 10
    while _state(process.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert _state(process.pid) == "Z"  # exited, not yet reaped
        assert processes_of(UID) == []
    finally:
        process.wait()


def test_sweep_kills_what_left_the_process_group() -> None:
    process = _start_as(UID, "setsid sleep 30 & exec sleep 30")
    deadline = time.monotonic() + 10
    while len(processes_of(UID)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(processes_of(UID)) == 2
    assert kill_user_processes(UID) is True
    process.wait(timeout=10)
    assert processes_of(UID) == []


_MAIN_THREAD_EXITS = f"""
import ctypes, os, threading, time
ctypes.CDLL("libgcc_s.so.1")  # pthread_exit unwinds with it; loaded before the uid changes
os.setgid({UID})
os.setuid({UID})
threading.Thread(target=lambda: (time.sleep(30), os._exit(0))).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_ended_counts_while_another_thread_runs() -> None:
    """``pthread_exit`` in the main thread leaves ``/proc/<pid>`` a zombie; the others run on.

    A fresh process, not a fork of this multithreaded test worker, whose locks a child inherits.
    """
    process = subprocess.Popen([sys.executable, "-c", _MAIN_THREAD_EXITS], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while _state(process.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(process.pid) == "Z"
        assert len(os.listdir(f"/proc/{process.pid}/task")) == 2
        assert processes_of(UID) == [process.pid]
        assert kill_user_processes(UID) is True
        assert processes_of(UID) == []
    finally:
        process.kill()
        process.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_a_killed_process_counts_as_dying_before_it_is_gone() -> None:
    """A process with a gigabyte to free takes a while to go; it can never run again."""
    code = "import time\nb = bytearray(1 << 30)\nprint('ready', flush=True)\ntime.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        assert is_dying(process.pid) is False
        os.kill(process.pid, signal.SIGKILL)
        assert is_dying(process.pid) is True
    finally:
        process.kill()
        process.communicate()
    assert is_dying(process.pid) is True  # gone


def test_the_scan_skips_processes_of_the_uid_that_are_already_killed() -> None:
    process = _start_as(UID, "exec sleep 30")
    try:
        assert processes_of(UID) == [process.pid]
        os.kill(process.pid, signal.SIGSTOP)  # stopped: SIGKILL stays visible a little longer
        os.kill(process.pid, signal.SIGKILL)
        assert processes_of(UID) == []
    finally:
        process.kill()
        process.wait()


def test_a_uid_with_a_live_process_is_not_handed_out(tmp_path: Path) -> None:
    process = _start_as(UID, "exec sleep 30")
    try:
        assert UidPool(UID, tmp_path).acquire() == UID + 1
    finally:
        process.kill()
        process.wait()


def test_a_uid_released_clean_is_reused_without_a_scan_and_stays_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, other = UidPool(UID, tmp_path), UidPool(UID, tmp_path)
    uid = pool.acquire()
    pool.release(uid, clean=True)
    assert other.acquire() == UID + 1  # idle, but still this pool's: no other server takes it

    def no_scan(uid: int) -> list[int]:
        raise AssertionError(f"scanned /proc for uid {uid}")

    monkeypatch.setattr(job_users, "processes_of", no_scan)
    assert pool.acquire() == uid
    pool.release(uid, clean=True)
    pool.close()  # unlocked for the others again
    monkeypatch.undo()
    assert other.acquire() == uid


def test_a_uid_released_without_a_clean_sweep_is_scanned_again(tmp_path: Path) -> None:
    pool = UidPool(UID, tmp_path)
    uid = pool.acquire()
    pool.release(uid)  # not known clean: e.g. the sweep gave up on a process that outlived it
    process = _start_as(uid, "exec sleep 30")
    try:
        assert pool.acquire() == UID + 1
    finally:
        process.kill()
        process.wait()
