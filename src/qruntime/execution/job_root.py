"""The filesystem a sandboxed job sees: a root of its own, built in its mount namespace.

It holds, read-only, only what a Python program needs (``/usr``, ``/etc``, ``/bin``, ``/lib*``,
``/opt`` and the Python installation with its packages), a minimal ``/dev`` and a fresh
``/proc``. ``/run``, ``/var/run``, ``/home``, ``/srv`` and every other host directory are not
there, so no host Unix socket can be reached by path, not even one created later (abstract
sockets belong to the network namespace). The only writable places are the job's own: its
working directory, ``/tmp``, ``/var/tmp`` and ``/dev/shm``, all on one tmpfs whose size is the
job's scratch cap. They are gone when the job's last process is: nothing the job writes
outlives it, so nothing of its uid is left for the uid's next job.
"""

from __future__ import annotations

import os
from pathlib import Path

from qruntime.execution import linux

#: Host directories a job sees (read-only) when they exist.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
#: Device nodes a job may use; GPU nodes are added when the host has them.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
GPU_DEVICE_PREFIXES = ("nvidia", "dri")
#: Where the job writes, all on its scratch tmpfs.
SCRATCH_DIRS = {
    "tmp": ("/tmp", 0o1777),
    "var-tmp": ("/var/tmp", 0o1777),
    "shm": ("/dev/shm", 0o1777),
}
_MOUNT_FLAGS = {
    "nosuid": linux.MS_NOSUID,
    "nodev": linux.MS_NODEV,
    "noexec": linux.MS_NOEXEC,
    "noatime": linux.MS_NOATIME,
    "nodiratime": linux.MS_NODIRATIME,
    "relatime": linux.MS_RELATIME,
}


def enter_job_root(
    workdir: str, uid: int | None, exposed: tuple[str, ...], scratch_bytes: int
) -> None:
    """Build the job's root at ``workdir`` (a host directory used as the mount point) and
    make it this process's ``/``; call in a fresh mount namespace, as root."""
    new_root = workdir
    linux.mount("tmpfs", new_root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755,size=1m")
    _links(new_root)
    for source in visible_paths(exposed):
        _bind(source, _inside(new_root, source))
    if _minimal_dev(new_root):  # GPU libraries read the PCI topology from /sys
        _bind("/sys", _inside(new_root, "/sys"))
    _scratch(new_root, workdir, uid, scratch_bytes)
    _uncover(new_root, visible_paths(exposed))
    Path(new_root, "proc").mkdir(exist_ok=True)
    os.chdir(new_root)
    linux.mount(new_root, "/", None, linux.MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    proc_flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", "/proc", "proc", proc_flags, "hidepid=invisible")
    _read_only_but(("/proc", "/tmp", "/var/tmp", "/dev/shm", workdir))


def visible_paths(exposed: tuple[str, ...]) -> list[str]:
    """The host directories a job's root brings in, outermost first, none inside another;
    top-level symlinks such as ``/bin -> usr/bin`` are made again in the root instead."""
    wanted = set()
    for path in (*SYSTEM_DIRS, *exposed):
        path = os.path.normpath(path)
        if os.path.isdir(path) and not (path in SYSTEM_DIRS and os.path.islink(path)):
            wanted |= {path, os.path.realpath(path)}
    ordered = sorted(wanted, key=len)
    return [p for i, p in enumerate(ordered) if not any(_under(p, q) for q in ordered[:i])]


def _links(root: str) -> None:
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), _inside(root, path))


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _bind(source: str, target: str) -> None:
    if os.path.isdir(source):
        Path(target).mkdir(parents=True, exist_ok=True)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).touch()
    linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)


def _minimal_dev(root: str) -> bool:
    """A tmpfs ``/dev`` with the harmless nodes, GPU nodes where present, and the usual links;
    True when there were GPU nodes."""
    dev = _inside(root, "/dev")
    Path(dev).mkdir(exist_ok=True)
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC, "mode=0755,size=64k")
    gpus = [n for n in os.listdir("/dev") if n.startswith(GPU_DEVICE_PREFIXES)]
    names = [*DEVICES, *gpus]
    for name in names:
        if os.path.exists(f"/dev/{name}"):
            _bind(f"/dev/{name}", f"{dev}/{name}")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    return bool(gpus)


def _scratch(root: str, workdir: str, uid: int | None, size: int) -> None:
    """One tmpfs of ``size`` bytes for everything the job writes, bound where it writes.

    It is mounted on a staging directory, bound into place, and the staging mount is then
    detached: the binds keep it (and its size cap) alive, and only them.
    """
    staging = _inside(root, "/.scratch")
    Path(staging).mkdir()
    linux.mount(
        "tmpfs", staging, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"mode=0755,size={size}"
    )
    places = {name: (where, mode) for name, (where, mode) in SCRATCH_DIRS.items()}
    places["work"] = (workdir, 0o700)
    for name, (where, mode) in places.items():
        source = Path(staging, name)
        source.mkdir()
        source.chmod(mode)
        if name == "work" and uid is not None:
            os.chown(source, uid, uid)
        target = Path(_inside(root, where))
        missing = [p for p in (target, *target.parents) if not p.exists()]
        target.mkdir(parents=True, exist_ok=True)
        for parent in missing[1:]:  # the path down to the job's directory: 0711, as on the host
            parent.chmod(0o711)
        linux.mount(str(source), str(target), None, linux.MS_BIND)
    linux.umount(staging, linux.MNT_DETACH)
    Path(staging).rmdir()


def _uncover(root: str, visible: list[str]) -> None:
    """Bring back, read-only, what the scratch tmpfs covered: a Python or venv that lives in
    ``/tmp`` (a fresh clone there) must stay readable, and its binds are not the job's to
    write (:func:`_read_only_but` leaves everything under the scratch places writable)."""
    scratch = [where for where, _ in SCRATCH_DIRS.values()]
    for source in visible:
        if any(_under(source, where) for where in scratch):
            target = _inside(root, source)
            _bind(source, target)
            read_only = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
            linux.mount(None, target, None, read_only | linux.MS_NOSUID | linux.MS_NODEV)


def _read_only_but(writable: tuple[str, ...]) -> None:
    """Remount every mount of this namespace read-only, but the job's own writable places."""
    for point, options in _mounts():
        if any(_under(point, w) for w in writable) or point == "/":
            continue
        flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
        for option in options:
            flags |= _MOUNT_FLAGS.get(option, 0)
        linux.mount(None, point, None, flags)
    root_flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
    linux.mount(None, "/", None, root_flags | linux.MS_NOSUID | linux.MS_NODEV)


def _mounts() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) for each mount, from ``/proc/self/mountinfo``."""
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # spaces come as \040
            found.append((point, fields[5].split(",")))
    return found


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
