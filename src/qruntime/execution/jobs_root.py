"""The directory that holds one server's job directories, gone with the server.

Named ``qruntime-jobs-p<pid>-<random>`` and held with an ``flock`` while the server lives; a
server that starts removes those whose lock nobody holds (their server is gone) and empty ones
of the older, unlocked kind, so that no ``qruntime-jobs-*`` pile up in the temporary directory.
A job that runs without a uid of its own has a directory ``qruntime-job-p<pid>-<random>`` beside
them (:func:`unowned_workdir`): those whose server pid is gone are removed too, and empty ones
of the older kind without a pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path

from qruntime.execution.pids import pid_alive

PREFIX = "qruntime-jobs-"
#: This kind's names; an older server's are the prefix and mkdtemp's 8 characters, no hyphen.
_LOCKED_NAME = re.compile(rf"^{PREFIX}p\d+-[a-z0-9_]+$")
#: A job directory made without a uid, named by its server's pid, and the older kind.
WORKDIR_PREFIX = "qruntime-job-"
_WORKDIR_NAME = re.compile(rf"^{WORKDIR_PREFIX}p(\d+)-[a-z0-9_]+$")
_OLDER_WORKDIR_NAME = re.compile(rf"^{WORKDIR_PREFIX}[a-z0-9_]{{8}}$")


def unowned_workdir(parent: Path | None) -> Path:
    """A job directory for a job without a uid of its own, named by this server's pid."""
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}p{os.getpid()}-", dir=parent))


class JobsRoot:
    def __init__(self, parent: Path | None):
        self._parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        self._path: Path | None = None
        self._lock: int | None = None
        remove_stale(self._parent)

    def path(self) -> Path:
        """The directory (created on first use; again if someone removed it), mode 0711."""
        if self._path is None or not self._path.is_dir():
            self.close()
            path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}p{os.getpid()}-", dir=self._parent))
            path.chmod(0o711)
            self._lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            self._path = path
        return self._path

    def close(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def remove_stale(parent: Path) -> None:
    _remove_stale_workdirs(parent)
    for entry in parent.glob(f"{PREFIX}*"):
        if not entry.is_dir() or entry.is_symlink():
            continue
        if not _LOCKED_NAME.match(entry.name):  # an older server's: only when empty
            with contextlib.suppress(OSError):
                entry.rmdir()
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its server is alive
        finally:
            os.close(fd)
        shutil.rmtree(entry, ignore_errors=True)


def _remove_stale_workdirs(parent: Path) -> None:
    """Job directories of servers that are gone; of the older kind, only empty ones."""
    for entry in parent.glob(f"{WORKDIR_PREFIX}*"):
        if not entry.is_dir() or entry.is_symlink():
            continue
        named = _WORKDIR_NAME.match(entry.name)
        if named is not None:
            if not pid_alive(int(named.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
        elif _OLDER_WORKDIR_NAME.match(entry.name):
            with contextlib.suppress(OSError):
                entry.rmdir()
