"""A cgroup per job, so that its limits hold over all of its processes, not each one.

Each job gets a memory cap over all its processes (its scratch tmpfs included: tmpfs pages are
charged to the cgroup that writes them), a cap on processes and threads, and a CPU weight. It
works with cgroup v2 where the server may create cgroups (the root of a container's namespace,
or a hierarchy delegated by systemd with ``Delegate=yes``: the server then moves itself into a
leaf of its own, as the "no internal processes" rule asks), and with the v1 ``memory``,
``pids`` and ``cpu`` controllers where root may write them. Elsewhere :func:`detect` says why
not, and jobs keep their per-process limits only.

The worker joins its cgroup itself, before its namespaces and before its uid change: every
process the program starts is in it from the first instruction on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from qruntime.execution.pids import pid_alive

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The prefix of each server's cgroup; the pid after it says whose (stale ones are removed).
PARENT_PREFIX = "qruntime-"
CONTROLLERS = ("memory", "pids", "cpu")
#: How long removing a job's cgroup waits for its last processes to be gone.
REMOVE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int
    max_processes: int
    #: Relative CPU share, 1-10000, 100 being the default of every cgroup (v2 ``cpu.weight``).
    cpu_weight: int = 100


class JobCgroups:
    """Creates, reads and removes the cgroups of this server's jobs, in one hierarchy."""

    def __init__(self, version: int, parents: dict[str, Path], limits: CgroupLimits):
        self.version = version
        #: controller -> this server's parent directory (v2: one directory for all).
        self.parents = parents
        self.limits = limits
        #: name -> its cgroup.procs files, for every job cgroup made and not yet removed.
        self._made: dict[str, tuple[str, ...]] = {}

    @property
    def description(self) -> str:
        where = ", ".join(sorted({str(p) for p in self.parents.values()}))
        return (
            f"a cgroup per job (v{self.version}, under {where}): memory "
            f"{self.limits.memory_bytes} B over all its processes and its scratch, "
            f"{self.limits.max_processes} processes and threads, CPU weight "
            f"{self.limits.cpu_weight}"
        )

    def create(self, name: str) -> tuple[str, ...]:
        """Make the job's cgroup(s) with their limits (once per name); the ``cgroup.procs``
        files to join."""
        if name in self._made:
            return self._made[name]
        limits = self.limits
        procs = []
        for controller, parent in self._dirs():
            path = parent / name
            make_cgroup(path)
            self._made.setdefault(name, ())
            if controller in ("memory", "unified"):
                if self.version == 2:
                    _write(path / "memory.max", limits.memory_bytes)
                    _write_if_there(path / "memory.swap.max", 0)
                else:
                    _write(path / "memory.limit_in_bytes", limits.memory_bytes)
                    _write_if_there(path / "memory.memsw.limit_in_bytes", limits.memory_bytes)
            if controller in ("pids", "unified"):
                _write(path / "pids.max", limits.max_processes)
            if controller in ("cpu", "unified"):
                if self.version == 2:
                    _write_if_there(path / "cpu.weight", limits.cpu_weight)
                else:
                    _write(path / "cpu.shares", max(2, limits.cpu_weight * 1024 // 100))
            procs.append(str(path / "cgroup.procs"))
        self._made[name] = tuple(procs)
        return self._made[name]

    def tasks_file(self, name: str) -> str | None:
        """The v1 ``tasks`` file of the job's ``pids`` cgroup, to find its processes without a
        ``/proc`` scan; None for v2 (there the sweep scans) or a cgroup not made."""
        if self.version != 1 or name not in self._made or "pids" not in self.parents:
            return None
        return str(self.parents["pids"] / name / "tasks")

    def limits_hit(self, name: str) -> list[str]:
        """Which of the job's limits the kernel enforced, in words naming their settings."""
        if name not in self._made:
            return []
        hits = []
        memory = self._dir("memory") / name
        if self.version == 2:
            oom = _field(memory / "memory.events", "oom_kill")
        else:
            oom = _field(memory / "memory.oom_control", "oom_kill")
        if oom:
            hits.append(
                f"the job used all of its memory, {self.limits.memory_bytes} bytes over all its "
                "processes and its scratch files (QRUNTIME_SANDBOX_MAX_JOB_MEMORY_BYTES), and "
                f"the kernel killed {oom} of its processes"
            )
        if _field(self._dir("pids") / name / "pids.events", "max"):
            hits.append(
                f"the job reached its limit of {self.limits.max_processes} processes and "
                "threads (QRUNTIME_SANDBOX_MAX_PROCESSES); starting more failed"
            )
        return hits

    def remove(self, name: str) -> None:
        """Remove the job's cgroup(s) once its processes are gone (waits briefly for them)."""
        if name not in self._made:
            return
        del self._made[name]
        for _, parent in self._dirs():
            _remove(parent / name)

    def close(self) -> None:
        """Remove every job cgroup left and this server's parent(s)."""
        for name in list(self._made):
            self.remove(name)
        for parent in set(self.parents.values()):
            with contextlib.suppress(OSError):
                remove_cgroup(parent)

    def _dirs(self) -> list[tuple[str, Path]]:
        if self.version == 2:
            return [("unified", self.parents["unified"])]
        return list(self.parents.items())

    def _dir(self, controller: str) -> Path:
        return self.parents["unified" if self.version == 2 else controller]


def detect(limits: CgroupLimits) -> tuple[JobCgroups | None, str]:
    """The job cgroups this server may make, or None and why not (for the log and /health)."""
    if not CGROUP_ROOT.is_dir():
        return None, f"unavailable: no cgroup file system at {CGROUP_ROOT}"
    mounts = _cgroup_mounts()
    own = _own_cgroups()
    problems = []
    for attempt in (_v2, _v1):
        try:
            found = attempt(mounts, own, limits)
        except OSError as exc:
            problems.append(f"{attempt.__name__[1:]}: {exc.strerror or exc} ({exc.filename})")
            continue
        if isinstance(found, str):
            problems.append(found)
            continue
        return found, found.description
    return None, "unavailable: " + "; ".join(problems)


def _v2(mounts: dict[str, tuple[Path, str]], own: dict[str, str], limits: CgroupLimits):
    if "unified" not in mounts or "" not in own:
        return "v2: no cgroup2 hierarchy for this process"
    mount, root = mounts["unified"]
    here = mount / _relative(own[""], root)
    available = (here / "cgroup.controllers").read_text().split()
    missing = [c for c in ("memory", "pids") if c not in available]
    if missing:
        return f"v2: the controllers {', '.join(missing)} are not available in {here}"
    wanted = [c for c in CONTROLLERS if c in available]
    _remove_stale(here)
    if here != mount:  # the "no internal processes" rule: the server moves to a leaf first
        leaf = here / f"{PARENT_PREFIX}server-{os.getpid()}"
        make_cgroup(leaf)
        _write(leaf / "cgroup.procs", os.getpid())
    _enable(here, wanted)
    parent = here / f"{PARENT_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    make_cgroup(parent)
    _enable(parent, wanted)
    cgroups = JobCgroups(2, {"unified": parent}, limits)
    _try(cgroups)
    return cgroups


def _v1(mounts: dict[str, tuple[Path, str]], own: dict[str, str], limits: CgroupLimits):
    missing = [c for c in ("memory", "pids") if c not in mounts or c not in own]
    if missing:
        return f"v1: no {', '.join(missing)} controller mounted"
    parents = {}
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    for controller in CONTROLLERS:
        if controller not in mounts or controller not in own:
            continue
        mount, root = mounts[controller]
        here = mount / _relative(own[controller], root)
        _remove_stale(here)
        parent = here / f"{PARENT_PREFIX}{token}"
        make_cgroup(parent)
        parents[controller] = parent
    cgroups = JobCgroups(1, parents, limits)
    _try(cgroups)
    return cgroups


def _try(cgroups: JobCgroups) -> None:
    """Make and remove one job cgroup, so that a platform that refuses says so at start."""
    try:
        cgroups.create("probe")
    except OSError:
        cgroups.close()
        raise
    cgroups.remove("probe")


def make_cgroup(path: Path) -> None:
    """A new cgroup (the kernel fills the directory with its interface files)."""
    path.mkdir(exist_ok=True)


def remove_cgroup(path: Path) -> None:
    """Remove a cgroup that has no processes and no children (its files go with it)."""
    path.rmdir()


def _enable(directory: Path, controllers: list[str]) -> None:
    enabled = (directory / "cgroup.subtree_control").read_text().split()
    wanted = " ".join(f"+{c}" for c in controllers if c not in enabled)
    if wanted:
        _write(directory / "cgroup.subtree_control", wanted)


def _remove_stale(directory: Path) -> None:
    """Parents (and their job cgroups) left by servers that are gone."""
    for entry in directory.glob(f"{PARENT_PREFIX}*"):
        pid = entry.name.removeprefix(PARENT_PREFIX).removeprefix("server-").split("-")[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        for child in entry.iterdir():
            if child.is_dir():
                _remove(child, wait=0.0)
        with contextlib.suppress(OSError):
            remove_cgroup(entry)


def _remove(path: Path, wait: float = REMOVE_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            remove_cgroup(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                log.warning("could not remove the job cgroup %s: %s", path, exc)
                return
            time.sleep(0.01)


def _cgroup_mounts() -> dict[str, tuple[Path, str]]:
    """controller (or "unified") -> (mount point, the hierarchy path mounted there)."""
    found: dict[str, tuple[Path, str]] = {}
    with open("/proc/self/mountinfo") as info:
        for line in info:
            before, _, after = line.partition(" - ")
            fields, kinds = before.split(), after.split()
            if kinds[0] == "cgroup2":
                found.setdefault("unified", (Path(fields[4]), fields[3]))
            elif kinds[0] == "cgroup":
                for option in kinds[2].split(","):
                    if option in CONTROLLERS:
                        found.setdefault(option, (Path(fields[4]), fields[3]))
    return found


def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path ("" for the v2 hierarchy)."""
    found = {}
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                found[controller] = path
    return found


def _relative(path: str, mount_root: str) -> str:
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        path = path[len(mount_root) :]
    return path.lstrip("/")


def _field(path: Path, name: str) -> int:
    """A ``name value`` line of a cgroup stats file; 0 when absent or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    return 0


def _write(path: Path, value: object) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


def _write_if_there(path: Path, value: object) -> None:
    if path.exists():
        _write(path, value)
