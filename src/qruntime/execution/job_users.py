"""A uid of its own for each running job, and the clean-up that kills whatever it left behind.

Per-job uids keep jobs apart from each other (files, signals, ``ptrace``, the process-count
limit) as well as from the server; after a job, every process of its uid is killed, including
any that left the job's process group with ``setsid``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import tempfile
import time
from pathlib import Path

#: Uids ``base .. base + MAX_SLOTS - 1`` are the pool's.
MAX_SLOTS = 4096


class UidPool:
    """Hands out ``base + slot`` for the lowest slot no server on this machine holds.

    Each taken uid is held with an ``flock`` on a file named after it, so several servers on
    one machine (or a restarted one) never share a uid, and a crashed server's locks go away
    with it. A uid that still has processes is skipped.
    """

    def __init__(self, base: int, lock_dir: Path | None = None):
        self.base = base
        self._lock_dir = lock_dir or Path(tempfile.gettempdir()) / "qruntime-uids"
        self._held: dict[int, int] = {}

    def acquire(self) -> int:
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

    def release(self, uid: int) -> None:
        fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)


def kill_user_processes(uid: int, *, timeout: float = 10.0) -> bool:
    """SIGKILL every live process of ``uid`` until none is left; False if some outlived ``timeout``.

    A fork bomb may create processes while this runs, so it sweeps until a sweep finds none.
    """
    deadline = time.monotonic() + timeout
    while True:
        pids = processes_of(uid)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def processes_of(uid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose real uid is ``uid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if fields.get("State", "").strip().startswith("Z"):
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            found.append(int(name))
    return found
