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

import functools
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
    _skeleton(new_root, exposed)
    staging = _inside(new_root, "/.scratch")
    Path(staging).mkdir()
    _scratch(new_root, workdir, uid, scratch_bytes, staging)
    Path(staging).rmdir()
    _finish(new_root, exposed, workdir)


def build_template(root: str, exposed: tuple[str, ...]) -> None:
    """The part of a job's root every job shares, read-only, at ``root``: call in the
    template's own mount namespace (root_template.py), once."""
    _skeleton(root, exposed)
    for where, _mode in SCRATCH_DIRS.values():  # mount points of each job's scratch
        Path(_inside(root, where)).mkdir(parents=True, exist_ok=True)
    _read_only_under(root)


def enter_template_root(
    root: str, workdir: str, uid: int | None, exposed: tuple[str, ...], scratch_bytes: int
) -> None:
    """Finish the job's root in a private copy of the template's namespace (its read-only
    part at ``root`` is there already) and make it this process's ``/``; as root.

    Only the job's own mounts are made here: its scratch tmpfs (staged on the root's empty
    ``/proc``, which gets its own ``proc`` after), what that covers, and ``/proc``.
    """
    _scratch(root, workdir, uid, scratch_bytes, _inside(root, "/proc"))
    _finish(root, exposed, workdir)


def _skeleton(root: str, exposed: tuple[str, ...]) -> None:
    """A tmpfs at ``root`` with the system directories bound in, ``/dev`` and ``/proc``."""
    linux.mount("tmpfs", root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755,size=1m")
    _links(root)
    for source in visible_paths(exposed):
        _bind(source, _inside(root, source))
    if _minimal_dev(root):  # GPU libraries read the PCI topology from /sys
        _bind("/sys", _inside(root, "/sys"))
    Path(root, "proc").mkdir(exist_ok=True)


def _finish(root: str, exposed: tuple[str, ...], workdir: str) -> None:
    _uncover(root, visible_paths(exposed))
    os.chdir(root)
    linux.mount(root, "/", None, linux.MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    proc_flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", "/proc", "proc", proc_flags, "hidepid=invisible")
    _read_only_but(("/proc", "/tmp", "/var/tmp", "/dev/shm", workdir))


@functools.lru_cache(maxsize=4)
def visible_paths(exposed: tuple[str, ...]) -> tuple[str, ...]:
    """The host directories a job's root brings in, outermost first, none inside another;
    top-level symlinks such as ``/bin -> usr/bin`` are made again in the root instead.

    Cached: the zygote computes it once (:func:`prepare`) and every worker it forks shares it.
    """
    wanted = set()
    for path in (*SYSTEM_DIRS, *exposed):
        path = os.path.normpath(path)
        if os.path.isdir(path) and not (path in SYSTEM_DIRS and os.path.islink(path)):
            wanted |= {path, os.path.realpath(path)}
    ordered = sorted(wanted, key=len)
    return tuple(p for i, p in enumerate(ordered) if not any(_under(p, q) for q in ordered[:i]))


@functools.lru_cache(maxsize=1)
def _system_links() -> tuple[tuple[str, str], ...]:
    """(link, target) of the system directories that are symlinks (``/bin -> usr/bin``)."""
    return tuple((p, os.readlink(p)) for p in SYSTEM_DIRS if os.path.islink(p))


def prepare(exposed: tuple[str, ...]) -> None:
    """In the zygote, before it forks: work out what every job's root is built from, once."""
    visible_paths(exposed)
    _system_links()


def _links(root: str) -> None:
    for path, target in _system_links():
        os.symlink(target, _inside(root, path))


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


def _scratch(root: str, workdir: str, uid: int | None, size: int, staging: str) -> None:
    """One tmpfs of ``size`` bytes for everything the job writes, bound where it writes.

    It is mounted on an empty ``staging`` directory, bound into place, and the staging mount
    is then detached: the binds keep it (and its size cap) alive, and only them.
    """
    linux.mount(
        "tmpfs", staging, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"mode=0755,size={size}"
    )
    places = {**SCRATCH_DIRS, "work": (workdir, 0o700)}
    for name, (where, mode) in places.items():  # plain os calls: this runs in every worker
        source = f"{staging}/{name}"
        os.mkdir(source)
        os.chmod(source, mode)
        if name == "work" and uid is not None:
            os.chown(source, uid, uid)
        target = _inside(root, where)
        _make_path(target)
        linux.mount(source, target, None, linux.MS_BIND)
    linux.umount(staging, linux.MNT_DETACH)


def _make_path(target: str) -> None:
    """``target`` and the directories down to it; those made on the way are 0711, as the
    host's path down to a job's directory is."""
    missing = []
    path = target
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    for path in reversed(missing):
        os.mkdir(path)
        if path != target:
            os.chmod(path, 0o711)


def _uncover(root: str, visible: tuple[str, ...]) -> None:
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
        if any(_under(point, w) for w in writable) or point == "/" or "ro" in options:
            continue  # (a template's mounts are read-only already)
        flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
        for option in options:
            flags |= _MOUNT_FLAGS.get(option, 0)
        linux.mount(None, point, None, flags)
    root_flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
    linux.mount(None, "/", None, root_flags | linux.MS_NOSUID | linux.MS_NODEV)


def _read_only_under(root: str) -> None:
    """Remount every mount at or under ``root`` read-only, keeping its other flags."""
    for point, options in _mounts():
        if _under(point, root):
            flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
            for option in options:
                flags |= _MOUNT_FLAGS.get(option, 0)
            linux.mount(None, point, None, flags)


def _mounts() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) for each mount, from ``/proc/self/mountinfo``."""
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            point = fields[4]
            if "\\" in point:  # spaces come as \040
                point = point.encode().decode("unicode_escape")
            found.append((point, fields[5].split(",")))
    return found


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
