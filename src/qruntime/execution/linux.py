"""The Linux system calls the sandbox needs that Python 3.11's ``os`` lacks (via libc)."""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 0x2
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

IS_LINUX = sys.platform.startswith("linux")
_libc = ctypes.CDLL(None, use_errno=True) if IS_LINUX else None
if _libc is not None:  # looked up once at import (in the zygote), not in every forked worker
    for _name in ("unshare", "setns", "mount", "umount2", "prctl"):
        getattr(_libc, _name)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    """Move this process into new namespaces (mount, network)."""
    _require_linux()
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace that ``fd`` (a ``/proc/<pid>/ns/*`` file) refers to."""
    _require_linux()
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _require_linux()
    result = _libc.mount(
        _bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data or None)
    )
    _check(result, f"mount {target}")


def umount(target: str, flags: int = 0) -> None:
    _require_linux()
    _check(_libc.umount2(_bytes(target), ctypes.c_int(flags)), f"umount {target}")


def prctl(option: int, value: int) -> None:
    _require_linux()
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0), "prctl")


def set_process_name(name: str) -> None:
    """The name ``ps`` and ``/proc/<pid>/comm`` show (15 bytes at most); a no-op elsewhere."""
    if IS_LINUX:
        PR_SET_NAME = 15
        _libc.prctl(ctypes.c_int(PR_SET_NAME), ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _require_linux() -> None:
    if _libc is None:
        raise OSError(38, f"not available on {sys.platform}")
