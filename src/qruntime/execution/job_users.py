"""A uid of its own for each running job, and the clean-up that kills whatever it left behind.

Per-job uids keep jobs apart from each other (files, signals, ``ptrace``, the process-count
limit) as well as from the server; after a job, every process of its uid is killed, including
any that left the job's process group with ``setsid``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

#: Uids ``base .. base + MAX_SLOTS - 1`` are the pool's.
MAX_SLOTS = 4096
#: The kernel's flag for a task that has begun to exit (include/linux/sched.h).
PF_EXITING = 0x00000004


class UidPool:
    """Hands out ``base + slot`` for the lowest slot no server on this machine holds.

    Each taken uid is held with an ``flock`` on a file named after it, so several servers on
    one machine (or a restarted one) never share a uid, and a crashed server's locks go away
    with it. A uid that still has processes is skipped.

    A uid released ``clean`` (a sweep found none of its processes) stays locked, idle, and is
    handed out next without another ``/proc`` scan: with no process of it and its lock held
    here, none can have appeared since (the sandbox sets ``no_new_privs``; only a lock
    holder starts processes as a pool uid). The scan ran twice per job on the event loop.
    """

    def __init__(self, base: int, lock_dir: Path | None = None):
        self.base = base
        self._lock_dir = lock_dir or Path(tempfile.gettempdir()) / "qruntime-uids"
        self._held: dict[int, int] = {}
        #: Idle uids, still locked, swept clean when released: no scan before reuse.
        self._clean: dict[int, int] = {}

    def acquire(self) -> int:
        if self._clean:
            uid = min(self._clean)
            self._held[uid] = self._clean.pop(uid)
            return uid
        self._lock_dir.mkdir(mode=0o700, exist_ok=True)
        for uid in range(self.base, self.base + MAX_SLOTS):
            if uid in self._held:
                continue
            fd = os.open(self._lock_dir / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if processes_of(uid):
                os.close(fd)
                continue
            self._held[uid] = fd
            return uid
        raise RuntimeError(f"no free job uid in {self.base}..{self.base + MAX_SLOTS - 1}")

    def release(self, uid: int, *, clean: bool = False) -> None:
        """Give ``uid`` back; ``clean``: a sweep after its job found none of its processes."""
        fd = self._held.pop(uid, None)
        if fd is None:
            return
        if clean:
            self._clean[uid] = fd
        else:
            os.close(fd)

    def close(self) -> None:
        """Unlock the idle uids, for other servers on this machine."""
        for fd in self._clean.values():
            os.close(fd)
        self._clean.clear()


def kill_user_processes(
    uid: int, *, timeout: float = 10.0, cgroup_tasks: str | None = None
) -> bool:
    """SIGKILL every live process of ``uid`` until none is left; False if some outlived ``timeout``.

    A fork bomb may create processes while this runs, so it sweeps until a sweep finds none.
    ``cgroup_tasks``: the job's cgroup, read instead of ``/proc`` (see :func:`job_processes`).
    """
    deadline = time.monotonic() + timeout
    while True:
        pids = job_processes(uid, cgroup_tasks)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def job_processes(uid: int, cgroup_tasks: str | None) -> list[int]:
    """The live processes of a job that ran as ``uid``: those of its v1 cgroup's ``tasks`` file
    where it has one (a few status reads), else every process of ``uid`` (a ``/proc`` scan).

    Complete either way: the worker joins its cgroup before it becomes ``uid``, and no process
    of the uid can leave it (docs/security.md, "Per-job uids"). An unreadable file scans.
    """
    if cgroup_tasks is not None:
        found = processes_in(cgroup_tasks)
        if found is not None:
            return found
    return processes_of(uid)


def processes_in(tasks: str) -> list[int] | None:
    """Pids of the live processes with a thread in a v1 cgroup's ``tasks`` file: not zombies,
    not dying; None if the file cannot be read. Threads, not ``cgroup.procs``: a process whose
    main thread ended is found by its others, as in :func:`processes_of`."""
    try:
        with open(tasks, "rb") as file:
            tids = file.read().split()
    except OSError:
        return None
    found = []
    for tid in tids:
        name = tid.decode()
        status = _status(name)
        if status is None or _real_uid_if_alive(status) is None or _dying(name, status):
            continue  # gone, a zombie thread, or on its way out
        pid = _tgid(status)
        if pid is not None and pid not in found:
            found.append(pid)
    return found


def _tgid(status: bytes) -> int | None:
    start = status.find(b"\nTgid:\t")
    if start < 0:
        return None
    return int(status[start + 7 : status.find(b"\n", start + 7)])


def processes_of(uid: int) -> list[int]:
    """Pids of the live processes whose real uid is ``uid``: not zombies, not dying.

    Reads ``/proc/<pid>/status`` raw, once, and looks for a few fields only: this scan runs
    twice per job, and parsing every field cost three times as much (docs/performance.md).
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        status = _status(name)
        if status is None:
            continue
        if _real_uid_if_alive(status) == uid:
            if not _dying(name, status):
                found.append(int(name))
        elif _zombie_of(status, uid) and _other_thread_runs(name):
            found.append(int(name))
    return found


def _zombie_of(status: bytes, uid: int) -> bool:
    """A zombie whose real uid is ``uid`` (only zombies get here: rare, so checked second)."""
    state = status.find(b"\nState:\t")
    if state < 0 or status[state + 8 : state + 9] != b"Z":
        return False
    return _real_uid(status) == uid


def _other_thread_runs(pid: str) -> bool:
    """True if a thread other than the exited main one still runs: a main thread that calls
    ``pthread_exit`` leaves its process a zombie in ``/proc/<pid>`` while the others go on."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        task = f"{pid}/task/{tid}"
        status = _status(task) if tid != pid else None
        if status is None or _real_uid_if_alive(status) is None:
            continue  # the main thread, gone, or a zombie itself
        if not _dying(task, status):
            return True
    return False


def is_dying(pid: int) -> bool:
    """True if ``pid`` can never run its own code again: SIGKILL is pending, or it is exiting.

    Such a process may take milliseconds to be gone (the kernel frees its memory first); a
    sweep need not wait for that. Gone counts as dying; unreadable does not.
    """
    if not os.path.exists(f"/proc/{pid}"):
        return True
    status = _status(str(pid))
    return status is not None and _dying(str(pid), status)


def _status(pid: str) -> bytes | None:
    """``/proc/<pid>/status`` as bytes; None if the process is gone or unreadable."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)


def _real_uid_if_alive(status: bytes) -> int | None:
    """The real uid in a status; None for a zombie or a status without one."""
    state = status.find(b"\nState:\t")
    uid = status.find(b"\nUid:\t")
    if state < 0 or uid < 0 or status[state + 8 : state + 9] == b"Z":
        return None
    return _real_uid(status)


def _real_uid(status: bytes) -> int | None:
    uid = status.find(b"\nUid:\t")
    if uid < 0:
        return None
    fields = status[uid + 6 : status.find(b"\n", uid + 6)].split()
    return int(fields[0]) if fields else None


def _dying(pid: str, status: bytes) -> bool:
    """SIGKILL pending (in the status), or the kernel's exiting flag set (in ``stat``)."""
    for field in (b"\nSigPnd:\t", b"\nShdPnd:\t"):
        start = status.find(field)
        if start >= 0:
            end = status.find(b"\n", start + len(field))
            if int(status[start + len(field) : end], 16) & (1 << (signal.SIGKILL - 1)):
                return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    flags = int(stat.rsplit(b")", 1)[1].split()[6])  # field 9 of /proc/<pid>/stat
    return bool(flags & PF_EXITING)


def shared_temporary_dirs() -> tuple[Path, ...]:
    """Where any uid may write on a typical host: what a job without a private scratch leaves."""
    candidates = {Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")}
    return tuple(sorted(p for p in candidates if p.is_dir()))


def remove_files_of(uid: int, roots: tuple[Path, ...]) -> None:
    """Delete everything owned by ``uid`` under ``roots`` (not following links), so that the
    uid's next job finds nothing of this one's; only needed where jobs share ``/tmp``."""
    for root in roots:
        for directory, subdirs, files in os.walk(root, topdown=False):
            for name in files + subdirs:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if os.lstat(path).st_uid != uid:
                        continue
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
